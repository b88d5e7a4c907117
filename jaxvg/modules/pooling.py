"""Attention pooling of query tokens (official AdaPooling)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxvg.modules.attention import MASK_VALUE
from jaxvg.modules.layers import Linear


class AdaPooling(nn.Module):
  """a = softmax_L(Linear(C→1, no bias)(x) masked), pooled = Σ_l a_l x_l."""
  dims: int

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    """x (..., L, C), mask (..., L) bool -> (..., C)."""
    logits = Linear(1, self.dims, use_bias=False, name='att')(x)[..., 0]
    logits = logits + jnp.where(mask, 0.0, MASK_VALUE).astype(logits.dtype)
    a = jax.nn.softmax(logits, axis=-1)
    return jnp.einsum('...l,...lc->...c', a, x)
