"""NST on the toy CG-STVG of the synthetic tube benchmark (`configs/cgstvg/synthetic.py`).

The argument is `method[,size]`: method '' (NST), 'lora', 'full' or 'frozen'; size that of
configs/cgstvg/synthetic.py ('tiny' for tests and notebooks). Set nst.base_checkpoint to the
workdir of a `configs/cgstvg/synthetic.py` run (`python benchmarks/nst_table.py` trains one).
"""
import os

from jaxvg import configs
from jaxvg.projects.nst.config import tune


def get_config(arg: str = ''):
  method, _, size = arg.partition(',')
  base_file = os.path.join(os.path.dirname(__file__), '..', 'cgstvg', 'synthetic.py')
  base = configs.load(f'{base_file}:{size}' if size else base_file)
  # The C5 input only: the toy's FFNs widen (64 -> 256) and have no null space. Frames are about
  # 100 pixels: ImageNet-C's radii (for 224) x 0.45.
  c = tune(base, method, points=('input_proj',), radius_scale=0.45)
  c.nst.generator_hidden = 32
  c.optim.lr = 1e-3
  c.train.epochs = 4
  c.eval.swapped_queries = False   # the mixed-quality benchmark's splits are what NST reports
  return c
