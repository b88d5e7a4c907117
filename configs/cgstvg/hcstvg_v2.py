"""CG-STVG on HC-STVG v2: `experiments/hcstvg2.yaml` differs from v1 only in SPAT_GT_THETA."""
from jaxvg.projects.cgstvg.config import base_config


def get_config(arg: str = ''):
  del arg
  c = base_config()
  c.data.test_halves = True     # the official test: even and odd frames of the test clip
  c.data.dataset = 'hcstvg2'
  c.model.spat_gt_theta = 0.7
  return c
