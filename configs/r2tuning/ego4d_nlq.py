"""R²-Tuning on Ego4D-NLQ, official hyperparameters (r2tuning.md §5)."""
from jaxvg import configs


def get_config():
  config = configs.r2tuning_base()
  config.data.dataset = 'ego4d_nlq'
  config.train.batch_size = 32
  config.train.epochs = 30
  config.optim.lr = 2.5e-4
  config.optim.decay_epochs = (20,)
  config.model.dropout = 0.3
  config.loss.sal_weight = 0.1
  config.post.nms_type = 'linear'
  config.post.unit = 0.0
  config.eval.dataset = 'ego4d_nlq'
  config.eval.primary_metric = 'MR-full-R1@0.5'
  return config
