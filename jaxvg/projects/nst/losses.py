"""NST's own loss term: the optional BCE of the QAU scores against the known HQ/LQ label."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax


def quality_bce(logits: Any, is_low_quality: jax.Array, mask: jax.Array | None = None
                ) -> jax.Array:
  """Mean BCE of every QAU logit in the pytree `logits` (all points, every score of a sample,
  batch first; e.g. the sown 'nst_quality' collection) against its sample's label (B,)
  (1 = degraded). `mask` (B,) drops padding samples; (B, K) weighs each of a point's K scores
  per sample (K = frames for per-frame scores)."""
  leaves = jax.tree.leaves(logits)
  if not leaves:
    raise ValueError("no QAU logits: apply with mutable=['nst_quality'] or return_quality=True")
  batch = is_low_quality.shape[0]
  mask = jnp.ones((batch,), jnp.float32) if mask is None else mask.astype(jnp.float32)
  total, count = 0.0, 0.0
  for logit in leaves:
    logit = logit.reshape(mask.shape + (-1,)).astype(jnp.float32)
    labels = jnp.broadcast_to(
        is_low_quality.astype(jnp.float32).reshape((batch,) + (1,) * (logit.ndim - 1)),
        logit.shape)
    weight = jnp.broadcast_to(mask[..., None], logit.shape)
    total += (optax.sigmoid_binary_cross_entropy(logit, labels) * weight).sum()
    count += weight.sum()
  return total / jnp.maximum(count, 1.0)
