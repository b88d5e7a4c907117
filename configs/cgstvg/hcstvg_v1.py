"""CG-STVG on HC-STVG v1: the official `experiments/hcstvg.yaml` (the base config's values) and
the official test (the 6.4-fps test clip run as its even and odd frames)."""
from jaxvg.projects.cgstvg.config import base_config


def get_config(arg: str = ''):
  del arg
  c = base_config()
  c.data.test_halves = True
  return c
