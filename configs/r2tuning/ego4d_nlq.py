"""R²-Tuning on Ego4D-NLQ, official hyperparameters."""
from jaxvg.projects.r2tuning import config as r2tuning


def get_config():
  config = r2tuning.base()
  config.data.dataset = 'ego4d_nlq'
  config.train.batch_size = 32
  config.optim.lr = 2.5e-4
  config.model.dropout = 0.3
  config.post.nms_type = 'linear'
  config.post.unit = 0.0
  return config
