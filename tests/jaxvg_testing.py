"""Helpers shared by the tests (importable: tests/conftest.py puts this folder on sys.path)."""
from __future__ import annotations

import pathlib
from typing import Any

import ml_collections

from jaxvg import configs

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs'


def load_config(spec: str, **overrides: Any) -> ml_collections.ConfigDict:
  """`configs/<spec>` through the project's loader, then dotted overrides
  (`load_config('r2tuning/synthetic.py:tiny', **{'train.epochs': 3})`)."""
  config = configs.load(str(CONFIGS / spec))
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split('.')
    for name in parents:
      node = node[name]
    node[leaf] = value
  return config


def tiny_synthetic_config(synthetic_root: str, **overrides: Any) -> ml_collections.ConfigDict:
  """The tiny synthetic R²-Tuning config on the session's generated benchmark."""
  return load_config('r2tuning/synthetic.py:tiny', **{'data.synthetic_root': synthetic_root,
                                                      **overrides})
