"""Zero-shot STVG on the embedded synthetic tube benchmark with the tiny random OneVision backend
committed for tests (the mechanics end to end, not accuracy: its weights are random).

  python -m jaxvg.main --config configs/zeroshot/synthetic.py:tiny --workdir runs/zs --mode predict
"""
import pathlib

from jaxvg.projects.zeroshot import config as zeroshot

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY_BACKEND = REPO / 'tests' / 'fixtures' / 'zeroshot_onevision'


def get_config(size: str = 'default'):
  config = zeroshot.base('onevision', 'full')
  config.model.folder = str(TINY_BACKEND)
  config.grounding.layer_start, config.grounding.layer_stop = None, None  # 3 layers: all
  config.grounding.prompt_bucket = 192
  config.data.dataset = 'synthetic_tubes'
  config.data.split = 'val'
  config.data.num_frames = 4
  config.data.synthetic_size = size
  if size == 'tiny':
    config.data.max_records = 2
  return config
