"""R²-Tuning on QVHighlights (MR + HD), official hyperparameters (r2tuning.md §5).

python -m jaxvg.main --config configs/r2tuning/qvhighlights.py --workdir runs/qvh \
  --config.data.anno_dir=data/qvhighlights --config.data.feature_dir=data/qvhighlights
"""
from jaxvg import configs


def get_config():
  config = configs.r2tuning_base()
  config.data.dataset = 'qvhighlights'
  config.data.repeat = 4              # RepeatDataset(times=4): one "epoch" is four passes.
  config.train.batch_size = 128
  config.train.epochs = 30
  config.optim.lr = 5e-4
  config.optim.decay_epochs = (20,)
  config.model.dropout = 0.5
  config.loss.sal_weight = 0.1
  config.post.nms_type = 'normal'
  config.post.nms_threshold = 0.7
  config.post.unit = 2.0
  config.eval.dataset = 'qvhighlights'
  config.eval.primary_metric = 'MR-full-mAP'
  return config
