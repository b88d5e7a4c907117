"""DropPath (stochastic depth) as in nncore: one Bernoulli draw per sample."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn


class DropPath(nn.Module):
  """Zeroes a whole residual branch per sample with probability `rate`, rescales the rest.

  Uses the 'droppath' rng stream so it can be split independently of element dropout.
  """
  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    if deterministic or self.rate == 0.0:
      return x
    keep = 1.0 - self.rate
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mask = jax.random.bernoulli(self.make_rng('droppath'), keep, shape)
    return jnp.where(mask, x / keep, jnp.zeros_like(x))
