"""R²-Tuning on Charades-STA, official hyperparameters."""
from jaxvg.projects.r2tuning import config as r2tuning


def get_config():
  config = r2tuning.base()
  config.data.dataset = 'charades_sta'
  config.data.val_split = 'test'
  config.train.batch_size = 32
  config.train.epochs = 50
  config.optim.lr = 2.5e-4
  config.optim.decay_epochs = (30,)
  config.model.dropout = 0.35
  config.loss.sal_weight = 0.01
  config.post.nms_type = 'linear'
  config.post.unit = 0.1
  return config
