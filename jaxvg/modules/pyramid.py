"""Temporal feature pyramid (official ConvPyramid): every level is built independently from x."""
from __future__ import annotations

import math
from typing import Sequence

import jax
from flax import linen as nn

from jaxvg.modules.layers import LayerNorm, conv1d


class ConvPyramid(nn.Module):
  """Level of stride s = 2^p: ReLU(x) if p == 0, else p × [Conv1d(k2, s2, VALID) → LN → ReLU].

  Levels with T < s are skipped (as officially); level s has ⌊T/s⌋ points.

  The official stride-1 level is `nn.ReLU(inplace=True)`: it rewrites the tensor it is given, so
  the coarser levels are built from ReLU(x), and so is everything the caller reads from x
  afterwards (R²-Tuning's saliency cosine and its saliency loss). Released checkpoints were
  trained that way; the pyramid returns x as the official code leaves it, next to the levels.
  There is deliberately no option for levels built from the raw x: no released checkpoint or
  reported number comes from that variant, and a model trained either way reads ReLU(x) at
  stride 1 anyway.
  """
  dims: int
  strides: Sequence[int]

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[list[jax.Array], jax.Array]:
    """x (B, T, C) -> (list of (B, ⌊T/s⌋, C) for the strides s ≤ T, x after the stride-1 level's
    in-place ReLU)."""
    if 1 in self.strides:
      x = nn.relu(x)
    levels = []
    for i, s in enumerate(self.strides):
      if x.shape[1] < s:
        continue
      y = x
      for j in range(int(math.log2(s))):
        y = conv1d(self.dims, self.dims, 2, stride=2, name=f'level{i}_conv{j}')(y)
        y = nn.relu(LayerNorm(name=f'level{i}_norm{j}')(y))
      levels.append(y)
    return levels, x
