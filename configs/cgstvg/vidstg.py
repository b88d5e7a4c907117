"""CG-STVG on VidSTG: `experiments/vidstg.yaml` (64 uniform frames, 128 at test, 10 epochs)."""
from jaxvg.projects.cgstvg.config import base_config


def get_config(arg: str = ''):
  del arg
  c = base_config()
  c.data.test_halves = True     # the official test: even and odd frames of the test clip
  c.data.dataset = 'vidstg'
  c.data.sample_fps = None
  c.model.temp_theta = -0.5
  c.model.spat_theta = 0.5
  c.model.spat_gt_theta = 0.5
  c.loss.giou = 3.0
  c.loss.sted = 1.0
  c.optim.groups.backbone.lr_scale = 1e-5 / 3e-4
  c.optim.schedule = 'multistep_with_warmup_all'
  c.optim.decay_epochs = (8, 10)
  c.train.epochs = 10
  return c
