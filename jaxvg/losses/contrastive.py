"""Contrastive losses: SampledNCE for saliency and InfoNCE for granularity calibration."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxvg.modules.layers import cosine_similarity

# Finite stand-in for -inf on excluded candidates (see jaxvg.modules.attention.MASK_VALUE).
_EXCLUDED = -1e9


def logit_scale(temperature: float, max_scale: float = 100.0) -> float:
  """exp(log(1/τ)) clamped at max_scale, the fixed (non-learnable) official logit scale."""
  return min(math.exp(math.log(1.0 / temperature)), max_scale)


def _l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """torch.nn.functional.normalize."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def _mean_over(values: jax.Array, mask: jax.Array) -> jax.Array:
  mask = mask.astype(values.dtype)
  return (jnp.where(mask > 0, values, 0.0)).sum() / jnp.maximum(mask.sum(), 1.0)


def sampled_nce_loss(video_emb: jax.Array, query_emb: jax.Array, video_mask: jax.Array,
                     saliency: jax.Array, pos_clip: jax.Array, sample_mask: jax.Array,
                     temperature: float = 0.07, direction: str = 'both') -> jax.Array:
  """Official SampledNCELoss.

  s_bt = cos(h_bt, q_b)/τ; candidates of sample b are its valid clips with saliency ≤ that of its
  positive clip p_b. 'row': −log softmax_t(s_b·)[p_b]. 'col': −log softmax_b'(s_b',p_b)[b], i.e.
  clip p_b of every video against its own query. Padded samples are neither rows nor candidates.

  video_emb (B, T, C), query_emb (B, C), video_mask/saliency (B, T), pos_clip/sample_mask (B,).
  """
  b = video_emb.shape[0]
  rows = jnp.arange(b)
  pos_score = saliency[rows, pos_clip][:, None]
  candidate = (saliency <= pos_score) & video_mask.astype(bool) & sample_mask[:, None]
  sim = cosine_similarity(video_emb, query_emb[:, None]) * logit_scale(temperature)
  sim = jnp.where(candidate, sim, _EXCLUDED)
  loss = -_mean_over(jax.nn.log_softmax(sim, axis=1)[rows, pos_clip], sample_mask)
  if direction == 'both':
    col = jax.nn.log_softmax(sim[:, pos_clip], axis=0)  # (B', B): column b is clip p_b
    loss = loss - _mean_over(col[rows, rows], sample_mask)
  elif direction != 'row':
    raise ValueError(f"config.loss.sal_direction must be 'both' or 'row', got {direction!r}")
  return loss


def info_nce_loss(a: jax.Array, b: jax.Array, valid: jax.Array,
                  temperature: float = 0.07) -> jax.Array:
  """nncore infonce_loss (fixed scale): symmetric CE over N candidates, matching pairs on the
  diagonal, averaged over all rows of all leading dims.

  a, b: (..., N, C); valid: (..., N) bool, excluded both as rows and as candidates.
  """
  a, b = _l2_normalize(a), _l2_normalize(b)
  sim = jnp.einsum('...nc,...mc->...nm', a, b) * logit_scale(temperature)
  both = valid[..., :, None] & valid[..., None, :]
  sim = jnp.where(both, sim, _EXCLUDED)
  diag = jnp.arange(a.shape[-2])
  a_loss = -_mean_over(jax.nn.log_softmax(sim, axis=-1)[..., diag, diag], valid)
  b_loss = -_mean_over(jax.nn.log_softmax(sim, axis=-2)[..., diag, diag], valid)
  return (a_loss + b_loss) / 2
