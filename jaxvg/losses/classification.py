"""Per-point classification losses: sigmoid focal loss (MR/HD) and soft-target BCE (HD only)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def bce_with_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Elementwise, numerically stable binary cross-entropy on logits (soft targets allowed)."""
  return jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  """Σ(mask·values)/Σmask; 0 when nothing is valid (e.g. a batch of padding only)."""
  mask = mask.astype(values.dtype)
  return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def focal_loss(logits: jax.Array, targets: jax.Array, mask: jax.Array,
               gamma: float = 2.0) -> jax.Array:
  """nncore FocalLoss (alpha off): BCE·(1 − p_t)^γ averaged over the valid points (not positives).

  logits, targets, mask: (B, N).
  """
  p = jax.nn.sigmoid(logits)
  p_t = p * targets + (1 - p) * (1 - targets)
  return _masked_mean(bce_with_logits(logits, targets) * (1 - p_t) ** gamma, mask)


def dynamic_bce_loss(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
  """nncore DynamicBCELoss with weight=mask: BCE on soft saliency targets over valid clips."""
  return _masked_mean(bce_with_logits(logits, targets), mask)
