"""Prediction head shared by all pyramid levels (official ConvHead)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxvg.modules.layers import conv1d


class ConvHead(nn.Module):
  """Conv1d(C, C, k, SAME) → ReLU → Conv1d(C, out, k, SAME).

  With `mask`, invalid positions are zeroed before each convolution, so a padded sequence gives
  the valid positions exactly what the unpadded one gives (zero padding at the true end).
  """
  dims: int
  out_dims: int
  kernel_size: int = 3

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """x (B, N, C), mask (B, N) bool or None -> (B, N, out_dims)."""
    zero = (lambda y: y) if mask is None else (
        lambda y: jnp.where(mask[..., None], y, jnp.zeros_like(y)))
    pad = self.kernel_size // 2
    x = conv1d(self.dims, self.dims, self.kernel_size, padding=pad, name='conv0')(zero(x))
    return conv1d(self.out_dims, self.dims, self.kernel_size, padding=pad,
                  name='conv1')(zero(nn.relu(x)))
