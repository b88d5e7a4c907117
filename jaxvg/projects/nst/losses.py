"""NST's own loss term: the optional BCE of the QAU scores against the known HQ/LQ label."""
from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import optax

from jaxvg.projects.nst.units import QUALITY_COLLECTION


def quality_bce(state: Mapping, is_low_quality: jax.Array,
                sample_mask: jax.Array | None = None) -> jax.Array:
  """Mean BCE of every sown QAU logit (all points, all scores of a sample) against its sample's
  label (B,) (1 = degraded); padding samples (`sample_mask` False) count for nothing."""
  logits = jax.tree.leaves(state.get(QUALITY_COLLECTION, {}))
  if not logits:
    raise ValueError(f'no QAU logits: apply with mutable=[{QUALITY_COLLECTION!r}]')
  batch = is_low_quality.shape[0]
  mask = jnp.ones((batch,), jnp.float32) if sample_mask is None else sample_mask.astype(jnp.float32)
  total, count = 0.0, 0.0
  for logit in logits:
    logit = logit.reshape(batch, -1).astype(jnp.float32)
    labels = jnp.broadcast_to(is_low_quality.astype(jnp.float32)[:, None], logit.shape)
    weight = jnp.broadcast_to(mask[:, None], logit.shape)
    total += (optax.sigmoid_binary_cross_entropy(logit, labels) * weight).sum()
    count += weight.sum()
  return total / jnp.maximum(count, 1.0)
