"""R²-Tuning on TACoS, official hyperparameters (r2tuning.md §5)."""
from jaxvg import configs


def get_config():
  config = configs.r2tuning_base()
  config.data.dataset = 'tacos'
  config.data.val_split = 'test'
  config.train.batch_size = 32
  config.train.epochs = 100
  config.optim.lr = 2.5e-4
  config.optim.decay_epochs = (50,)
  config.model.dropout = 0.5
  config.loss.sal_weight = 0.05
  config.post.nms_type = 'linear'
  config.post.unit = 0.0
  config.eval.dataset = 'tacos'
  config.eval.primary_metric = 'MR-full-R1@0.5'
  return config
