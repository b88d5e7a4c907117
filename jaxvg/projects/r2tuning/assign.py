"""FCOS/ActionFormer-style target assignment of GT windows to pyramid points (official
`BundleLoss.get_target_single`, vectorised over batch × points × GTs)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def assign_targets(points: jax.Array, windows: jax.Array, window_mask: jax.Array,
                   center_radius: float) -> tuple[jax.Array, jax.Array]:
  """Assigns each point the shortest GT window that claims it.

  A GT (g_s, g_e) claims point (p, lo, hi, s) if p lies inside the centre region
  [max(c − radius·s, g_s), min(c + radius·s, g_e)] (c the GT centre; radius ≤ 0 = inside the
  GT) and lo ≤ max(p − g_s, g_e − p) ≤ hi (inclusive). Among claiming GTs the shortest wins;
  GTs within 1e-3 of the shortest all count as positive.

  Args:
    points: (N, 4) [position, range_lo, range_hi, stride] in clip units.
    windows: (B, G, 2) GT windows in clip units; entries where `window_mask` is false are ignored.
    window_mask: (B, G) bool.
    center_radius: centre-sampling radius in strides.
  Returns:
    cls_target (B, N) in {0, 1} and reg_target (B, N, 2) = (p − g_s, g_e − p)/s of the chosen GT.
  """
  windows = jnp.where(window_mask[..., None], windows, 0.0)
  pos, lo, hi, stride = (points[:, i][None, :, None] for i in range(4))   # (1, N, 1)
  g_s, g_e = windows[:, None, :, 0], windows[:, None, :, 1]                # (B, 1, G)
  r = jnp.stack([pos - g_s, g_e - pos], axis=-1)                          # (B, N, G, 2)
  if center_radius > 0:
    center = (g_s + g_e) / 2
    dist_s = pos - jnp.maximum(center - stride * center_radius, g_s)
    dist_e = jnp.minimum(center + stride * center_radius, g_e) - pos
    inside = jnp.minimum(dist_s, dist_e) >= 0
  else:
    inside = r.min(-1) >= 0
  reach = r.max(-1)
  in_range = (reach >= lo) & (reach <= hi)
  claims = inside & in_range & window_mask[:, None, :]
  lens = jnp.where(claims, g_e - g_s, jnp.inf)                             # (B, N, G)
  min_len = lens.min(-1, keepdims=True)
  cls_target = ((lens <= min_len + 1e-3) & (lens < jnp.inf)).any(-1)
  best = jnp.argmin(lens, axis=-1)
  reg_target = jnp.take_along_axis(r, best[..., None, None], axis=2)[:, :, 0] / points[None, :, 3:4]
  return cls_target.astype(jnp.float32), reg_target
