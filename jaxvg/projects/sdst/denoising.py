"""Denoising queries for SDST's decoder (DN-DETR, Li et al. CVPR 2022; contrastive negatives
from DINO, Zhang et al. ICLR 2023). Not SDST's: an [assumed] training aid behind
`config.model.dn_groups` (0, the default, turns it off).

In training only, `dn_groups` copies of the GT windows, their edges moved at random, enter the
decoder beside its M matching queries. Each copy is supervised towards the GT window it came from,
with no Hungarian matching: the decoder learns to refine a span near a window from the first step,
rather than waiting for the matching to settle. With `dn_negatives` every group also holds a
copy moved further (between once and twice the noise), labelled background, so the class head
learns to reject near misses. The self-attention mask keeps the matching queries from seeing any
denoising query (evaluation has none) and each group from seeing the others (each copy would
reveal its GT). Static shapes: a group holds one query per GT slot, padded slots masked.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvg.losses.spans import cxw_to_xx, xx_to_cxw

MIN_WIDTH = 1e-3   # a noised span never collapses to a point (its inverse sigmoid stays finite)


def noised_spans(key: jax.Array, gt_spans: jax.Array, groups: int, noise: float,
                 negatives: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
  """GT spans (B, G, 2) (centre, width) -> denoising queries' spans (B, N, 2), their GT index
  (N,) and whether each is a positive (N,), N = groups·G·(2 if negatives else 1).

  Group n holds its positives then (with `negatives`) its negatives, one per GT slot. Each edge
  moves by u·w/2 with a random sign: |u| < noise for positives, noise <= |u| < 2·noise for
  negatives (DINO's box noise in one dimension); clipped to [0, 1], edges kept in order.
  """
  b, g, _ = gt_spans.shape
  per_group = 2 if negatives else 1
  index = jnp.tile(jnp.arange(g), groups * per_group)
  positive = jnp.tile(jnp.repeat(jnp.arange(per_group) == 0, g), groups)
  edges = cxw_to_xx(gt_spans)[:, index]                                   # (B, N, 2)
  half_width = gt_spans[:, index, 1:] / 2
  magnitude_key, sign_key = jax.random.split(key)
  magnitude = jax.random.uniform(magnitude_key, edges.shape) + jnp.where(positive, 0.0, 1.0)[:, None]
  sign = jnp.where(jax.random.bernoulli(sign_key, 0.5, edges.shape), 1.0, -1.0)
  edges = jnp.clip(edges + sign * magnitude * noise * half_width, 0.0, 1.0)
  edges = jnp.sort(edges, axis=-1)
  spans = xx_to_cxw(edges)
  spans = spans.at[..., 1].set(jnp.maximum(spans[..., 1], MIN_WIDTH))
  return spans, index, positive


def attention_mask(num_matching: int, groups: int, slot_mask: jax.Array) -> jax.Array:
  """(B, Q, Q) self-attention mask (True = attend) over M matching queries then the denoising
  groups: every query sees the matching queries, a denoising query also the real slots of its
  own group, a matching query no denoising query. slot_mask (B, N): the denoising queries of real
  GT windows, N = groups·group size."""
  b, n = slot_mask.shape
  group = jnp.concatenate([jnp.full((num_matching,), -1), jnp.repeat(jnp.arange(groups),
                                                                      n // groups)])
  same_group = (group[:, None] == group[None, :]) & (group[None, :] >= 0)
  keys = jnp.concatenate([jnp.ones((b, num_matching), bool), slot_mask], axis=1)
  return ((group[None, :] < 0) | same_group)[None] & keys[:, None, :]
