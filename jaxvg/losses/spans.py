"""1-D span geometry for DETR-style moment losses: (centre, width) ↔ (start, end), IoU, GIoU."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def cxw_to_xx(spans: jax.Array) -> jax.Array:
  """(..., 2) (centre, width) -> (start, end)."""
  c, w = spans[..., 0], spans[..., 1]
  return jnp.stack([c - w / 2, c + w / 2], axis=-1)


def xx_to_cxw(spans: jax.Array) -> jax.Array:
  """(..., 2) (start, end) -> (centre, width)."""
  s, e = spans[..., 0], spans[..., 1]
  return jnp.stack([(s + e) / 2, e - s], axis=-1)


def temporal_iou_and_giou(a: jax.Array, b: jax.Array, eps: float = 1e-6
                          ) -> tuple[jax.Array, jax.Array]:
  """IoU and generalised IoU of (start, end) spans a (..., 2) and b (..., 2), broadcasting.

  GIoU = IoU − (hull − union)/hull (Moment-DETR's generalized_temporal_iou); empty unions and
  hulls are guarded by eps so degenerate spans give finite values and gradients.
  """
  inter = jnp.maximum(jnp.minimum(a[..., 1], b[..., 1]) - jnp.maximum(a[..., 0], b[..., 0]), 0)
  union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
  iou = inter / jnp.maximum(union, eps)
  hull = jnp.maximum(a[..., 1], b[..., 1]) - jnp.minimum(a[..., 0], b[..., 0])
  return iou, iou - (hull - union) / jnp.maximum(hull, eps)


def pairwise_iou_and_giou(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(..., N, 2) × (..., G, 2) (start, end) -> IoU and GIoU (..., N, G)."""
  return temporal_iou_and_giou(a[..., :, None, :], b[..., None, :, :])
