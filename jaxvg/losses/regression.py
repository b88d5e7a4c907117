"""Boundary regression loss."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def l1_loss(pred: jax.Array, target: jax.Array, positive: jax.Array) -> jax.Array:
  """Σ over positive points and both ends of |pred − target|, divided by 2·#positives.

  pred, target: (B, N, 2); positive: (B, N) bool. The official code divides by zero when a batch
  has no positive point; here that case gives 0 (and no gradient).
  """
  err = jnp.where(positive[..., None], jnp.abs(pred - target), 0.0)
  count = 2.0 * positive.sum()
  return err.sum() / jnp.maximum(count, 1.0)
