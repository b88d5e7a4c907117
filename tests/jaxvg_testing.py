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


def small_r2tuning_config(**model: Any) -> ml_collections.ConfigDict:
  """R²-Tuning at tiny widths (dims 32, CLIP widths 16/12, 5 tokens, 4 heads) for model tests;
  `model` overrides fields of `config.model`."""
  from jaxvg.projects.r2tuning import config as r2_config
  c = r2_config.base()
  c.model.update(dict(dims=32, video_dims=16, query_dims=12, num_tokens=5, num_heads=4))
  c.model.update(model)
  return c
