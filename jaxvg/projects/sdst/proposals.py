"""Dense query selection for SDST's decoder (`config.model.query_selection='dense'`): not SDST's,
an [assumed] option after two-stage Deformable DETR and DINO's mixed query selection.

A per-clip proposal head on the dense stream gives every clip a foreground logit and a span
around the clip (distances to its left and right edge); after the first step's dense layer the
top-scoring clips' spans, detached, replace the learned reference spans of the decoder queries
(their content stays learned). The head is supervised at every step the way per-clip detectors
(R²-Tuning, FCOS) are: a clip whose centre lies in a GT window is a positive for that window
(the shortest, where windows overlap), focal loss on every clip, L1 and GIoU on the positives.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxvg.modules.anchor_decoder import inverse_sigmoid
from jaxvg.modules.layers import Linear

INITIAL_REACH = 0.05   # each edge's distance from the clip centre at init (of the true length)


class ProposalHead(nn.Module):
  """D (B, T, F) -> logits (B, T) and spans (B, T, 2) (centre, width) in [0, 1] of each true
  length, clip t's span reaching σ(r_left) to its left and σ(r_right) to its right of
  (t + 1/2)/n."""
  dims: int
  prior_logit: float

  @nn.compact
  def __call__(self, dense: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
    logits = nn.Dense(1, bias_init=nn.initializers.constant(self.prior_logit),
                      name='class')(dense)[..., 0]
    hidden = nn.relu(Linear(self.dims, self.dims, name='reach0')(dense))
    reach = jax.nn.sigmoid(nn.Dense(2, kernel_init=nn.initializers.zeros, name='reach1')(hidden)
                           + inverse_sigmoid(jnp.asarray(INITIAL_REACH)))
    centre = clip_centres(lengths, dense.shape[1])
    edges = jnp.clip(jnp.stack([centre - reach[..., 0], centre + reach[..., 1]], -1), 0.0, 1.0)
    return logits, jnp.stack([edges.mean(-1), edges[..., 1] - edges[..., 0]], -1)


def clip_centres(lengths: jax.Array, num_clips: int) -> jax.Array:
  """(t + 1/2)/n for t = 0..T-1 and each sample's true length n (B,): (B, T)."""
  return (jnp.arange(num_clips) + 0.5)[None] / jnp.maximum(lengths, 1)[:, None]


def select(logits: jax.Array, spans: jax.Array, video_mask: jax.Array, learned: jax.Array
           ) -> jax.Array:
  """The references of M queries (B, M, 2): the spans of the top-min(M, T) valid clips by
  logit, detached, then the learned references `learned` (B, M, 2) where a sample has fewer
  valid clips (and for queries beyond T)."""
  m, t = learned.shape[1], logits.shape[1]
  k = min(m, t)
  top, index = jax.lax.top_k(jnp.where(video_mask, logits, -jnp.inf), k)
  chosen = jnp.take_along_axis(spans, index[..., None], axis=1)
  chosen = jnp.where(jnp.isfinite(top)[..., None], chosen, learned[:, :k])
  return jnp.concatenate([jax.lax.stop_gradient(chosen), learned[:, k:]], axis=1)


def clip_targets(gt_spans: jax.Array, gt_mask: jax.Array, video_mask: jax.Array
                 ) -> tuple[jax.Array, jax.Array]:
  """Each clip's GT: gt_spans (B, G, 2) (centre, width), gt_mask (B, G), video_mask (B, T) ->
  positive (B, T) (its centre inside a real window) and that window (B, T, 2), the shortest of
  those containing it."""
  centre = clip_centres(video_mask.sum(-1), video_mask.shape[1])[..., None]      # (B, T, 1)
  start = (gt_spans[..., 0] - gt_spans[..., 1] / 2)[:, None]
  end = (gt_spans[..., 0] + gt_spans[..., 1] / 2)[:, None]
  inside = (start <= centre) & (centre <= end) & gt_mask[:, None] & video_mask[..., None]
  window = jnp.argmin(jnp.where(inside, gt_spans[:, None, :, 1], jnp.inf), axis=-1)
  return inside.any(-1), jnp.take_along_axis(gt_spans, window[..., None], axis=1)
