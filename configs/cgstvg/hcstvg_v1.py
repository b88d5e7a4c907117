"""CG-STVG on HC-STVG v1: the official `experiments/hcstvg.yaml` (the base config's values)."""
from jaxvg.projects.cgstvg.config import base_config


def get_config(arg: str = ''):
  del arg
  return base_config()
