"""Multi-head attention as in nncore: separate q/k/v/m projections and an additive key mask."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxvg.modules import init

# Additive bias for masked keys. Finite instead of -inf: on any row with a valid key exp() of it
# underflows to exactly 0 (same result as -inf), and a fully masked row (a padded sample) gives a
# finite uniform average instead of NaNs that would poison gradients through jnp.where.
MASK_VALUE = -1e9


class MultiHeadAttention(nn.Module):
  """Scaled dot-product attention over `heads` heads; masks keys only (queries are not masked)."""
  dims: int
  heads: int

  @nn.compact
  def __call__(self, q: jax.Array, k: jax.Array, v: jax.Array,
               key_mask: jax.Array | None = None) -> jax.Array:
    """q (B, Lq, C), k/v (B, Lk, C), key_mask (B, Lk) bool -> (B, Lq, C)."""
    proj = lambda name: nn.Dense(self.dims, kernel_init=init.xavier_uniform,  # noqa: E731
                                 bias_init=nn.initializers.zeros, name=name)
    head_dims = self.dims // self.heads
    split = lambda x: x.reshape(x.shape[:2] + (self.heads, head_dims))  # noqa: E731
    q, k, v = split(proj('q')(q)), split(proj('k')(k)), split(proj('v')(v))
    logits = jnp.einsum('bqhd,bkhd->bhqk', q, k) / head_dims**0.5
    if key_mask is not None:
      logits = logits + jnp.where(key_mask, 0.0, MASK_VALUE)[:, None, None, :].astype(logits.dtype)
    att = jax.nn.softmax(logits, axis=-1)
    out = jnp.einsum('bhqk,bkhd->bqhd', att, v).reshape(q.shape[:2] + (self.dims,))
    return proj('m')(out)
