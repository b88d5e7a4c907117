"""The in-jit Hungarian matcher against scipy.optimize.linear_sum_assignment."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from jaxvg.modules.matching import batched_hungarian_match, hungarian_match


def _scipy_cost(cost: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
  sub = cost[:, mask].astype(np.float64)
  rows, cols = linear_sum_assignment(sub)
  return float(sub[rows, cols].sum()), len(rows)


def _random_problems(rng: np.random.Generator, n: int, m: int, g: int):
  """Costs of several kinds (continuous, small integers with many ties, constant rows, large
  offsets) and GT masks with 0..g valid entries anywhere in the row."""
  kind = rng.integers(0, 4, size=n)
  cont = rng.normal(size=(n, m, g))
  ints = rng.integers(0, 4, size=(n, m, g)).astype(np.float64)
  const = np.broadcast_to(rng.integers(0, 3, size=(n, m, 1)), (n, m, g)).astype(np.float64)
  large = rng.normal(size=(n, m, g)) * 50 - 20
  cost = np.select([kind[:, None, None] == k for k in range(4)], [cont, ints, const, large])
  num_valid = rng.integers(0, g + 1, size=n)
  mask = np.zeros((n, g), bool)
  for i, k in enumerate(num_valid):
    mask[i, rng.choice(g, size=k, replace=False)] = True
  cost = np.where(mask[:, None, :], cost, np.nan)   # masked entries must not matter
  return cost.astype(np.float32), mask


@pytest.mark.parametrize('m,g,n', [(10, 32, 3000), (10, 4, 1000), (5, 5, 1000)])
def test_total_cost_equals_scipy(m, g, n):
  rng = np.random.default_rng(m * 100 + g)
  cost, mask = _random_problems(rng, n, m, g)
  gt_index, matched = jax.jit(batched_hungarian_match)(cost, mask)
  gt_index, matched = np.asarray(gt_index), np.asarray(matched)
  for i in range(n):
    want, count = _scipy_cost(cost[i], mask[i])
    sel = matched[i]
    assert sel.sum() == count
    chosen = gt_index[i][sel]
    assert mask[i][chosen].all(), 'matched a padded GT'
    assert len(set(chosen.tolist())) == len(chosen), 'a GT matched twice'
    got = float(cost[i][np.flatnonzero(sel), chosen].astype(np.float64).sum())
    assert got == pytest.approx(want, rel=1e-5, abs=1e-3), i


def test_single_match_jittable_and_empty():
  cost = jnp.arange(6.0).reshape(3, 2)
  gt_index, matched = jax.jit(hungarian_match)(cost, jnp.zeros((2,), bool))
  assert not np.asarray(matched).any()
  gt_index, matched = hungarian_match(jnp.zeros((3, 0)), jnp.zeros((0,), bool))
  assert gt_index.shape == (3,) and not np.asarray(matched).any()
