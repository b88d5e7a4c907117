"""SDST on TACoS (MR only) with InternVideo2 features.

Long videos (≈5 min on average): the buckets below hold them at 0.5 clips/s [assumed rate of the
SDST features, research §9.10].
"""
from jaxvg.projects.sdst import config as sdst_config


def get_config(arg: str = ''):
  del arg
  config = sdst_config.base()
  config.model.dims = 280
  config.data.dataset = 'tacos'
  config.data.val_split = 'test'
  config.data.t_buckets = (128, 256, 512, 1024)
  config.data.max_windows = 2
  config.loss.hd_weight = 0.1       # [assumed]
  config.post.unit = 0.0
  config.train.epochs = 100         # [assumed] R²-Tuning's schedule.
  config.optim.lr = 2.5e-4
  config.optim.decay_epochs = (50,)
  return config
