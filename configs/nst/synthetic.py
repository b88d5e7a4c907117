"""NST on the toy CG-STVG of the synthetic tube benchmark (`configs/cgstvg/synthetic.py`); the
argument picks the method ('' = NST, 'lora', 'full', 'frozen'). Set nst.base_checkpoint to the
workdir of a `configs/cgstvg/synthetic.py` run (`python -m jaxvg.bench --only nst` trains one)."""
import os

from jaxvg import configs
from jaxvg.projects.nst.config import tune


def get_config(arg: str = ''):
  base = configs.load(os.path.join(os.path.dirname(__file__), '..', 'cgstvg', 'synthetic.py'))
  # The C5 input only: the toy's FFNs widen (64 -> 256) and have no null space. Frames are about
  # 64 pixels: ImageNet-C's radii (for 224) x 0.3.
  c = tune(base, arg, points=('input_proj',), radius_scale=0.3)
  c.nst.generator_hidden = 32
  c.optim.lr = 1e-3
  c.train.epochs = 4
  return c
