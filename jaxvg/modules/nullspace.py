"""Null-space and row-space bases of a frozen linear map, for residuals the map cannot see.

For a frozen layer y = W x + b (W: d_out × d_in; a 1×1 convolution is the same map over
channels), any v with W v = 0 leaves the output unchanged: W (x + v) + b = W x + b. The SVD
W = U Σ Vᵀ splits R^{d_in} into the row space span(v_1 … v_r) and the null space
span(v_{r+1} … v_{d_in}), r the numerical rank.

Rank rules (`rank_rule`):
- 'matrix_rank' (default): NumPy's `matrix_rank` tolerance, σ_i > σ_1 · max(d_out, d_in) · eps,
  eps the float32 machine epsilon. The null space is then exact to float32 rounding; it is
  non-trivial only for down-projections (d_in > d_out) or rank-deficient weights.
- 'energy': for full-rank layers, the k weakest directions whose squared singular values sum to
  at most `energy` × Σσ² (the d_in − d_out directions with σ = 0 always count). Then
  ‖W v‖ ≤ σ_{r+1} ‖v‖: bounded, not zero.

The bases are stored apart from the parameters, in the `COLLECTION` variable collection, so no
optimiser ever sees them. Only the smaller of the two bases is kept (d_in × min(r, d_in − r)):
the other projection is the identity minus this one, so a projection costs two skinny matrix
products and never a dense d_in × d_in projector. Each entry carries the SHA-256 digest of the
weight it came from, so `refresh` recomputes a basis only when its frozen weight changed.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Literal, Mapping

import jax
import jax.numpy as jnp
import numpy as np

COLLECTION = 'nullspace'
Layout = Literal['flax', 'torch']
RankRule = Literal['matrix_rank', 'energy']


def weight_matrix(weight: np.ndarray | jax.Array, layout: Layout = 'flax') -> np.ndarray:
  """The (d_out, d_in) float32 matrix of a Linear or 1×1 conv weight.

  Flax: Dense kernel (d_in, d_out), Conv kernel (1, 1, d_in, d_out). PyTorch: Linear weight
  (d_out, d_in), Conv2d weight (d_out, d_in, 1, 1) (any number of unit spatial axes).
  """
  weight = np.asarray(weight, dtype=np.float32)
  if weight.ndim < 2:
    raise ValueError(f'a Linear or 1x1 conv weight has at least 2 axes, got shape {weight.shape}')
  if layout not in ('flax', 'torch'):
    raise ValueError(f"layout must be 'flax' or 'torch', got {layout!r}")
  spatial = weight.shape[:-2] if layout == 'flax' else weight.shape[2:]
  if any(size != 1 for size in spatial):
    raise ValueError(f'only Linear and 1x1 conv weights have a per-position null space; '
                     f'got a {layout} weight of shape {weight.shape}')
  if layout == 'flax':
    return weight.reshape(weight.shape[-2:]).T
  return weight.reshape(weight.shape[:2])


def digest(matrix: np.ndarray) -> np.ndarray:
  """SHA-256 of a float32 matrix (its shape and bytes) as 8 uint32 words."""
  matrix = np.ascontiguousarray(matrix, dtype=np.float32)
  hasher = hashlib.sha256(repr(matrix.shape).encode())
  hasher.update(matrix.tobytes())
  return np.frombuffer(hasher.digest(), dtype='>u4').astype(np.uint32)


@dataclasses.dataclass(frozen=True)
class Subspaces:
  """The SVD split of R^{d_in} for one weight: orthonormal columns, V_N ⊥ V_R."""
  v_null: np.ndarray           # (d_in, d_in − rank)
  v_row: np.ndarray            # (d_in, rank)
  singular_values: np.ndarray  # (min(d_out, d_in),), descending
  rank: int


def null_rank(singular_values: np.ndarray, shape: tuple[int, int],
              rank_rule: RankRule = 'matrix_rank', energy: float = 1e-3) -> int:
  """The rank r under `rank_rule` (module docstring); the null space has dimension d_in − r."""
  d_out, d_in = shape
  sigma = np.asarray(singular_values, dtype=np.float64)
  if sigma.size == 0 or sigma[0] == 0:
    return 0
  if rank_rule == 'matrix_rank':
    tolerance = sigma[0] * max(d_out, d_in) * np.finfo(np.float32).eps
    return int(np.sum(sigma > tolerance))
  if rank_rule == 'energy':
    if not 0 <= energy < 1:
      raise ValueError(f'energy must lie in [0, 1), got {energy}')
    # Tail energy of the weakest directions: tail[i] = Σ_{j ≥ i} σ_j².
    tail = np.cumsum(np.square(sigma)[::-1])[::-1]
    within = tail <= energy * tail[0]
    return int(np.argmax(within)) if within.any() else sigma.size
  raise ValueError(f"rank_rule must be 'matrix_rank' or 'energy', got {rank_rule!r}")


def subspaces(weight: np.ndarray | jax.Array, layout: Layout = 'flax',
              rank_rule: RankRule = 'matrix_rank', energy: float = 1e-3) -> Subspaces:
  """Null-space and row-space bases of a frozen weight, by a float32 SVD."""
  matrix = weight_matrix(weight, layout)
  _, sigma, vt = jnp.linalg.svd(jnp.asarray(matrix), full_matrices=True)
  sigma, v = np.asarray(sigma), np.asarray(vt).T
  rank = null_rank(sigma, matrix.shape, rank_rule, energy)
  return Subspaces(v_null=v[:, rank:], v_row=v[:, :rank], singular_values=sigma, rank=rank)


def basis_entry(weight: np.ndarray | jax.Array, layout: Layout = 'flax',
                rank_rule: RankRule = 'matrix_rank', energy: float = 1e-3) -> dict[str, np.ndarray]:
  """One layer's entry of the `COLLECTION`: the smaller basis ('v_null' or 'v_row') and the
  digest of the weight it came from."""
  split = subspaces(weight, layout, rank_rule, energy)
  d_in = split.v_null.shape[0]
  key, basis = (('v_null', split.v_null) if d_in - split.rank <= split.rank
                else ('v_row', split.v_row))
  return {key: np.ascontiguousarray(basis), 'digest': digest(weight_matrix(weight, layout))}


def refresh(weights: Mapping[str, np.ndarray | jax.Array],
            previous: Mapping[str, Mapping[str, jax.Array]] | None = None, *,
            layout: Layout = 'flax', rank_rule: RankRule = 'matrix_rank',
            energy: float = 1e-3) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
  """Entries for every named weight, reusing `previous` entries whose digest still matches.

  Returns (entries, names recomputed). The rank rule is part of what a caller must keep fixed
  between refreshes: a changed rule with unchanged weights is not detected by the digest.
  """
  entries, recomputed = {}, []
  for name, weight in weights.items():
    old = (previous or {}).get(name)
    if old is not None and np.array_equal(np.asarray(old['digest']),
                                          digest(weight_matrix(weight, layout))):
      entries[name] = dict(old)
    else:
      entries[name] = basis_entry(weight, layout, rank_rule, energy)
      recomputed.append(name)
  return entries, recomputed


def null_dimension(entry: Mapping[str, jax.Array]) -> int:
  """dim N(W) of a stored entry."""
  if 'v_null' in entry:
    return entry['v_null'].shape[1]
  return entry['v_row'].shape[0] - entry['v_row'].shape[1]


def split(g: jax.Array, entry: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
  """(P_N g, P_R g) over the last axis of `g`, by the stored basis: P g = (g V) Vᵀ and the
  other projection the remainder, so cost is O(d_in · min(r, d_in − r)) per vector."""
  if 'v_null' in entry:
    null = _project(g, entry['v_null'])
    return null, g - null
  row = _project(g, entry['v_row'])
  return g - row, row


def _project(g: jax.Array, basis: jax.Array) -> jax.Array:
  """(g V) Vᵀ at full float32 precision: TPUs (and GPUs with TF32) otherwise round matmul
  inputs to bfloat16 / TF32 and the null component would leak through W at that precision."""
  basis = basis.astype(g.dtype)
  highest = jax.lax.Precision.HIGHEST
  return jnp.matmul(jnp.matmul(g, basis, precision=highest), basis.T, precision=highest)
