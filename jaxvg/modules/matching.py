"""Exact minimum-cost bipartite matching (Hungarian algorithm) in pure JAX.

DETR-style set losses match M predictions to the G ground truths of each sample. Doing that on the
host (`scipy.optimize.linear_sum_assignment` through a callback) stalls every step of an
accelerator run, so the assignment runs inside the jitted step instead: the shortest augmenting
path algorithm with dual potentials (Kuhn–Munkres in the Jonker–Volgenant form), one augmentation
per matched pair, written with `lax.while_loop` over static shapes and vmapped over the batch.

Rectangular problems are solved with the smaller side as rows, as scipy does: with at most
min(M, G) augmentations of at most max(M, G) + 1 column scans each, a 10-query / 32-GT problem is a
few hundred vector steps. Ties are broken by the lowest index; the total cost is optimal, the
assignment itself may differ from scipy's where several are optimal.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

_INF = jnp.inf


def _solve_rows(cost: jax.Array, num_rows: jax.Array, col_valid: jax.Array) -> jax.Array:
  """Optimal assignment of the first `num_rows` rows of `cost` (R, C) to distinct valid columns.

  Requires num_rows ≤ #valid columns. Returns `owner` (C,) int32: the row assigned to each
  column, or -1. Internally 1-indexed with a virtual column 0 holding the row being inserted.
  """
  r, c = cost.shape
  # a[i, j] for i in 1..R, j in 1..C; row/column 0 are virtual and never read as costs.
  a = jnp.zeros((r + 1, c + 1), cost.dtype).at[1:, 1:].set(cost)
  col_ok = jnp.concatenate([jnp.zeros((1,), bool), col_valid])

  def insert_row(state):
    i, u, v, p, way = state

    def scan_cond(s):
      _, _, p, _, _, used, j0, steps = s
      return (p[j0] != 0) & (steps <= c)

    def scan_body(s):
      u, v, p, way, minv, used, j0, steps = s
      used = used.at[j0].set(True)
      i0 = p[j0]
      reduced = a[i0] - u[i0] - v
      free = ~used & col_ok
      better = free & (reduced < minv)
      minv = jnp.where(better, reduced, minv)
      way = jnp.where(better, j0, way)
      masked = jnp.where(free, minv, _INF)
      j1 = jnp.argmin(masked)
      delta = masked[j1]
      # Used columns keep their rows' reduced costs at zero: u[p[j]] += δ, v[j] −= δ.
      u = u.at[jnp.where(used, p, 0)].add(jnp.where(used, delta, 0.0))
      u = u.at[0].set(0.0)
      v = jnp.where(used, v - delta, v)
      minv = jnp.where(free, minv - delta, minv)
      return u, v, p, way, minv, used, j1, steps + 1

    p = p.at[0].set(i)
    minv = jnp.full((c + 1,), _INF, cost.dtype)
    used = jnp.zeros((c + 1,), bool)
    u, v, p, way, _, _, j0, _ = jax.lax.while_loop(
        scan_cond, scan_body, (u, v, p, way, minv, used, jnp.int32(0), jnp.int32(0)))

    def augment_cond(s):
      return s[1] != 0

    def augment_body(s):
      p, j0 = s
      j1 = way[j0]
      return p.at[j0].set(p[j1]), j1

    p, _ = jax.lax.while_loop(augment_cond, augment_body, (p, j0))
    return i + 1, u, v, p.at[0].set(0), way

  # Row potentials are indexed by p[j], which is 0 for an unassigned column: u[0] stays 0.
  state = (jnp.int32(1), jnp.zeros((r + 1,), cost.dtype), jnp.zeros((c + 1,), cost.dtype),
           jnp.zeros((c + 1,), jnp.int32), jnp.zeros((c + 1,), jnp.int32))
  _, _, _, p, _ = jax.lax.while_loop(lambda s: s[0] <= num_rows, insert_row, state)
  return p[1:] - 1


def hungarian_match(cost: jax.Array, gt_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Minimum-cost matching of M predictions to the valid ground truths of one sample.

  Args:
    cost: (M, G) float cost of matching prediction m to ground truth g; must be finite where
      `gt_mask` is true (masked columns may hold anything, NaN included).
    gt_mask: (G,) bool, the valid ground truths (a padding sample has none).
  Returns:
    gt_index (M,) int32: the ground truth matched to each prediction (0 where unmatched) and
    matched (M,) bool. Exactly min(M, #valid) predictions are matched, with minimal total cost.
  """
  m, g = cost.shape
  if g == 0:
    return jnp.zeros((m,), jnp.int32), jnp.zeros((m,), bool)
  gt_mask = gt_mask.astype(bool)
  cost = jnp.where(gt_mask[None, :], cost, 0.0)
  num_gt = gt_mask.sum()
  rows, cols = min(m, g), max(m, g)
  # GTs as rows while they are the smaller side (valid GTs moved to the front, stable).
  gt_order = jnp.argsort(~gt_mask, stable=True)
  by_gt = jnp.zeros((rows, cols), cost.dtype).at[:, :m].set(cost.T[gt_order[:rows]])
  by_gt_cols = jnp.arange(cols) < m
  # Predictions as rows when there are more valid GTs than predictions (then M < G = cols).
  by_pred = jnp.zeros((rows, cols), cost.dtype).at[:, :g].set(cost[:rows])
  by_pred_cols = jnp.zeros((cols,), bool).at[:g].set(gt_mask)
  swap = num_gt > m
  owner = _solve_rows(jnp.where(swap, by_pred, by_gt), jnp.where(swap, m, num_gt),
                      jnp.where(swap, by_pred_cols, by_gt_cols))
  # by_gt: column j = prediction j, owner = GT slot in gt_order. by_pred: column j = GT j,
  # owner = prediction.
  slot = owner[:m]
  gt_from_gt_rows = jnp.where(slot >= 0, gt_order[jnp.maximum(slot, 0)], 0)
  matched_from_gt_rows = slot >= 0
  pred_of_gt = owner[:g]
  assigned = pred_of_gt >= 0
  gt_from_pred_rows = jnp.zeros((m,), jnp.int32).at[jnp.where(assigned, pred_of_gt, m)].set(
      jnp.arange(g, dtype=jnp.int32), mode='drop')
  matched_from_pred_rows = jnp.zeros((m,), bool).at[jnp.where(assigned, pred_of_gt, m)].set(
      True, mode='drop')
  gt_index = jnp.where(swap, gt_from_pred_rows, gt_from_gt_rows).astype(jnp.int32)
  matched = jnp.where(swap, matched_from_pred_rows, matched_from_gt_rows)
  return gt_index, matched


def batched_hungarian_match(cost: jax.Array, gt_mask: jax.Array
                            ) -> tuple[jax.Array, jax.Array]:
  """`hungarian_match` over a leading batch axis: cost (B, M, G), gt_mask (B, G) ->
  gt_index (B, M) int32, matched (B, M) bool. No gradient flows through the assignment."""
  cost = jax.lax.stop_gradient(cost)
  return jax.vmap(hungarian_match)(cost, gt_mask)
