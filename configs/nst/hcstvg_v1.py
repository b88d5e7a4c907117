"""NST on CG-STVG for hcstvg_v1: `configs/cgstvg/hcstvg_v1.py` frozen; the argument picks the method
('' = NST, 'lora', 'full', 'frozen'). Set nst.base_checkpoint to the trained CG-STVG."""
import os

from jaxvg import configs
from jaxvg.projects.nst.config import tune


def get_config(arg: str = ''):
  base = configs.load(os.path.join(os.path.dirname(__file__), '..', 'cgstvg', 'hcstvg_v1.py'))
  # The visual inputs (C5 and Swin maps, where degradation enters) and the encoder FFNs
  # [recon: the paper's layers are unknown]; 420-pixel frames scale ImageNet-C's radii by 1.9.
  return tune(base, arg, points=('input_proj', 'input_proj2', 'encoder_ffn'), radius_scale=1.9)
