"""SDST on QVHighlights (MR + HD) with the released InternVideo2-1B features (research §3).

python -m jaxvg.main --config configs/sdst/qvhighlights.py --workdir runs/sdst_qvh \
  --config.data.anno_dir=data/qvhighlights --config.data.feature_dir=data/sdst_internvideo2

Widths: F = 280 (8 heads of 35) lands at 4.15 M trainable parameters against the paper's 4.1 M
(F = 256: 3.51 M; 272: 3.93 M; 288: 4.37 M); the other widths are base()'s [assumed] defaults.
"""
from jaxvg.projects.sdst import config as sdst_config


def get_config(arg: str = ''):
  del arg
  config = sdst_config.base()
  config.model.dims = 280           # [assumed] chosen to match the paper's 4.1 M parameters.
  config.data.dataset = 'qvhighlights'
  config.data.t_buckets = (75,)     # 150 s at 2 s per clip (§3: max_v_l = 75).
  config.post.unit = 2.0
  return config
