"""R²-Tuning on TACoS, official hyperparameters."""
from jaxvg.projects.r2tuning import config as r2tuning


def get_config():
  config = r2tuning.base()
  config.data.dataset = 'tacos'
  config.data.val_split = 'test'
  config.train.batch_size = 32
  config.train.epochs = 100
  config.optim.lr = 2.5e-4
  config.optim.decay_epochs = (50,)
  config.loss.sal_weight = 0.05
  config.post.nms_type = 'linear'
  config.post.unit = 0.0
  return config
