"""R²-Tuning on Charades-STA, official hyperparameters (r2tuning.md §5)."""
from jaxvg import configs


def get_config():
  config = configs.r2tuning_base()
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
  config.eval.dataset = 'charades_sta'
  config.eval.primary_metric = 'MR-full-R1@0.5'
  return config
