"""Parameter trees as safetensors files keyed by '/'-joined paths: the caches of the synthetic
pretraining runs (toy CLIP, toy ResNet, grounding transformer)."""
from __future__ import annotations

import os
import tempfile
from typing import Any

import jax
import numpy as np


def save_params(params: Any, path: str) -> None:
  """Writes a param tree as safetensors keyed by '/'-joined paths (atomic rename)."""
  from safetensors.numpy import save_file
  flat = {'/'.join(str(k.key) for k in keys): np.asarray(leaf)
          for keys, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
  directory = os.path.dirname(path) or '.'
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, suffix='.tmp')
  os.close(fd)
  try:
    save_file(flat, tmp)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def load_params(path: str) -> dict[str, Any]:
  """The param tree `save_params` wrote."""
  from safetensors.numpy import load_file
  tree: dict[str, Any] = {}
  for key, value in load_file(path).items():
    *parents, leaf = key.split('/')
    node = tree
    for name in parents:
      node = node.setdefault(name, {})
    node[leaf] = value
  return tree
