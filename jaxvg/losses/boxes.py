"""Box geometry in JAX for box losses and box-driven selection: IoU and generalised IoU of
paired boxes (elementwise over leading axes, not the N×M matrix)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def cxcywh_to_xyxy(boxes: jax.Array) -> jax.Array:
  cx, cy, w, h = jnp.moveaxis(boxes, -1, 0)
  return jnp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def _area(boxes: jax.Array) -> jax.Array:
  return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def paired_iou(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
  """IoU and union of paired (…, 4) xyxy boxes. Degenerate pairs (zero union) give 0 IoU
  (padding positions), where torchvision would give NaN."""
  lt = jnp.maximum(a[..., :2], b[..., :2])
  rb = jnp.minimum(a[..., 2:], b[..., 2:])
  wh = jnp.clip(rb - lt, 0)
  inter = wh[..., 0] * wh[..., 1]
  union = _area(a) + _area(b) - inter
  safe = jnp.where(union > 0, union, 1.0)
  return jnp.where(union > 0, inter / safe, 0.0), union


def paired_giou(a: jax.Array, b: jax.Array) -> jax.Array:
  """Generalised IoU (Rezatofighi et al.) of paired (…, 4) xyxy boxes."""
  iou, union = paired_iou(a, b)
  lt = jnp.minimum(a[..., :2], b[..., :2])
  rb = jnp.maximum(a[..., 2:], b[..., 2:])
  wh = jnp.clip(rb - lt, 0)
  hull = wh[..., 0] * wh[..., 1]
  safe = jnp.where(hull > 0, hull, 1.0)
  return iou - jnp.where(hull > 0, (hull - union) / safe, 0.0)
