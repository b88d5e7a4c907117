"""Null-space bases against NumPy / SciPy, the rank rules, the digest cache, the projections."""
import numpy as np
import pytest
import scipy.linalg

import jax.numpy as jnp

from jaxvg.modules import nullspace


def _rank_deficient(rng, d_out, d_in, rank):
  return (rng.normal(size=(d_out, rank)) @ rng.normal(size=(rank, d_in))).astype(np.float32)


def _same_subspace(a, b):
  """Orthonormal bases span the same subspace iff their projectors agree."""
  assert a.shape == b.shape
  np.testing.assert_allclose(a @ a.T, b @ b.T, atol=2e-5)


@pytest.mark.parametrize('d_out, d_in, rank', [(8, 32, 8), (16, 24, 5), (24, 24, 24), (12, 12, 7),
                                               (40, 16, 3)])
def test_subspaces_match_numpy_and_scipy(d_out, d_in, rank):
  rng = np.random.default_rng(d_out * 100 + d_in + rank)
  w = _rank_deficient(rng, d_out, d_in, rank)
  split = nullspace.subspaces(w, layout='torch')
  assert split.rank == np.linalg.matrix_rank(w) == rank
  # The float32 matrix is full rank in float64 arithmetic: compare at the float32 tolerance.
  rcond = max(w.shape) * np.finfo(np.float32).eps
  _same_subspace(split.v_null, scipy.linalg.null_space(w.astype(np.float64), rcond=rcond))
  _, sigma, vt = np.linalg.svd(w.astype(np.float64))
  np.testing.assert_allclose(split.singular_values, sigma, rtol=1e-4, atol=1e-4 * sigma[0])
  _same_subspace(split.v_row, vt[:rank].T)
  np.testing.assert_allclose(split.v_null.T @ split.v_row, 0, atol=1e-5)
  # W kills the null space: ‖W V_N‖ relative to ‖W‖.
  assert np.linalg.norm(w @ split.v_null, 2) <= 1e-6 * max(np.linalg.norm(w, 2), 1) * 8


def test_layouts_agree():
  rng = np.random.default_rng(0)
  w = rng.normal(size=(6, 20)).astype(np.float32)  # PyTorch (out, in)
  layouts = {'torch': [w, w[:, :, None, None]], 'flax': [w.T, w.T[None, None]]}
  for layout, weights in layouts.items():
    for weight in weights:
      np.testing.assert_array_equal(nullspace.weight_matrix(weight, layout), w)
  with pytest.raises(ValueError, match='1x1'):
    nullspace.weight_matrix(np.zeros((3, 3, 4, 8)), 'flax')


def test_energy_rule_truncates_full_rank_weights():
  rng = np.random.default_rng(1)
  u, _ = np.linalg.qr(rng.normal(size=(16, 16)))
  v, _ = np.linalg.qr(rng.normal(size=(16, 16)))
  sigma = np.array([10.0] * 12 + [0.05, 0.04, 0.03, 0.01])
  w = (u * sigma) @ v.T
  assert nullspace.subspaces(w, 'torch').rank == 16  # full rank: no exact null space
  split = nullspace.subspaces(w, 'torch', rank_rule='energy', energy=1e-4)
  tail = np.square(sigma[12:]).sum() / np.square(sigma).sum()
  assert tail < 1e-4 and split.rank == 12
  # The output change is bounded by the largest dropped singular value.
  assert np.linalg.norm(w @ split.v_null, 2) <= 0.05 * (1 + 1e-4)


def test_stores_smaller_basis_and_refreshes_on_digest():
  rng = np.random.default_rng(2)
  down = rng.normal(size=(64, 8)).astype(np.float32)  # Flax (in, out): null dim 56 > rank 8
  square = rng.normal(size=(32, 32)).astype(np.float32)
  entries, recomputed = nullspace.refresh({'down': down, 'square': square})
  assert recomputed == ['down', 'square']
  assert entries['down']['v_row'].shape == (64, 8) and 'v_null' not in entries['down']
  assert entries['square']['v_null'].shape == (32, 0)
  assert nullspace.null_dimension(entries['down']) == 56
  again, recomputed = nullspace.refresh({'down': down, 'square': square}, entries)
  assert recomputed == [] and again['down']['v_row'] is entries['down']['v_row']
  changed = down.copy()
  changed[0, 0] += 1e-3
  _, recomputed = nullspace.refresh({'down': changed, 'square': square}, entries)
  assert recomputed == ['down']


@pytest.mark.parametrize('d_in, d_out, rank', [(96, 16, 16), (48, 40, 40), (32, 32, 20)])
def test_split_is_invisible_to_the_weight(d_in, d_out, rank):
  rng = np.random.default_rng(d_in)
  kernel = _rank_deficient(rng, d_out, d_in, rank).T  # Flax (in, out)
  entry = nullspace.basis_entry(kernel)
  g = jnp.asarray(rng.normal(size=(5, 7, d_in)).astype(np.float32))
  null, row = nullspace.split(g, entry)
  np.testing.assert_allclose(np.asarray(null + row), np.asarray(g), atol=1e-6)
  w = kernel.T.astype(np.float64)
  null64 = np.asarray(null, np.float64).reshape(-1, d_in).T
  ratio = np.linalg.norm(w @ null64) / (np.linalg.norm(w, 2) * np.linalg.norm(null64))
  assert ratio < 1e-6, ratio
  # The row part is what W sees.
  np.testing.assert_allclose(np.asarray(row) @ kernel, np.asarray(g) @ kernel, rtol=1e-4, atol=1e-4)
