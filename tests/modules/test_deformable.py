"""1-D span sampling of the deformable attentions (RDSA and its baseline)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.modules.deformable import (DeformableSpanAttention, ReferenceDeformableSelfAttention,
                                      interpolate, span_positions, tadtr_grid_bias)


def _grid_sample_reference(values: np.ndarray, positions: np.ndarray, length: int) -> np.ndarray:
  """grid_sample(align_corners=False, padding zeros) along time, by floor/ceil gathers."""
  x = positions * length - 0.5
  lo = np.floor(x).astype(int)
  frac = x - lo
  out = np.zeros(positions.shape + values.shape[1:])
  for idx, w in ((lo, 1 - frac), (lo + 1, frac)):
    ok = (idx >= 0) & (idx < length)
    out += np.where(ok[..., None], values[np.clip(idx, 0, length - 1)] * w[..., None], 0.0)
  return out


def test_interpolate_matches_grid_sample_with_zero_padding():
  rng = np.random.default_rng(0)
  t, c, lengths = 9, 5, np.array([9, 6])
  values = rng.normal(size=(2, t, c))
  # Clip centres, midpoints, the video's outer edges, outside it, and inside the padded clips.
  positions = np.concatenate([rng.uniform(-0.4, 1.4, size=(2, 40)),
                              (np.arange(t)[None] + 0.5) / lengths[:, None],
                              np.array([[0.0, 1.0, -0.2, 1.3], [0.0, 1.0, 7.5 / 6, 1.2]])], 1)
  got = np.asarray(interpolate(jnp.asarray(values), jnp.asarray(positions), jnp.asarray(lengths)))
  for i, n in enumerate(lengths):
    np.testing.assert_allclose(got[i], _grid_sample_reference(values[i, :n], positions[i], n),
                               atol=1e-5)
  # Clip centres read the clip exactly; padded clips and far-out positions read zeros.
  np.testing.assert_allclose(got[1, 40:46], values[1, :6], atol=1e-6)
  np.testing.assert_array_equal(got[1, 46:49], 0.0)
  np.testing.assert_array_equal(got[:, -2:], 0.0)


def test_span_offsets_minus_one_zero_one_are_the_edges_and_centre():
  spans = jnp.array([[0.3, 0.2], [0.5, 1.0]])
  pos = span_positions(spans, jnp.broadcast_to(jnp.array([-1.0, 0.0, 1.0]), (2, 3)))
  np.testing.assert_allclose(pos, [[0.2, 0.3, 0.4], [0.0, 0.5, 1.0]], atol=1e-7)


def _identity_attention_params(params, dims, bias_offsets, pick):
  """Offsets fixed by the bias, all weight on point `pick`, identity value/output maps."""
  p = jax.tree.map(np.array, params)
  p['sampling_offsets']['bias'] = np.asarray(bias_offsets, np.float32)
  logits = np.full(len(bias_offsets), -1e4, np.float32)
  logits[pick] = 0.0
  p['attention_weights']['bias'] = logits
  for name in ('value_proj', 'output_proj'):
    p[name]['kernel'], p[name]['bias'] = np.eye(dims, dtype=np.float32), np.zeros(dims, np.float32)
  return p


@pytest.mark.parametrize('pick,edge', [(0, -1.0), (1, 0.0), (2, 1.0)])
def test_attention_reads_left_edge_centre_right_edge(pick, edge):
  rng = np.random.default_rng(pick)
  dims, t = 4, 10
  values = jnp.asarray(rng.normal(size=(1, t, dims)), jnp.float32)
  spans = jnp.array([[[0.45, 0.3], [0.1, 0.5]]])               # the second reaches before 0
  lengths = jnp.array([t])
  module = DeformableSpanAttention(dims, heads=1, points=3)
  params = module.init(jax.random.key(0), jnp.zeros((1, 2, dims)), spans, values, lengths)
  # Offsets are divided by `points`: a bias of ±3 is ±1 span half-width.
  p = _identity_attention_params(params['params'], dims, [-3.0, 0.0, 3.0], pick)
  out, positions = module.apply({'params': p}, jnp.zeros((1, 2, dims)), spans, values, lengths)
  want_pos = np.asarray(spans[0, :, 0] + edge * spans[0, :, 1] / 2)
  np.testing.assert_allclose(positions[0, :, 0, pick], want_pos, atol=1e-6)
  want = _grid_sample_reference(np.asarray(values[0]), want_pos, t)
  np.testing.assert_allclose(out[0], want, atol=1e-5)


def test_positions_outside_the_video_read_zeros():
  dims = 4
  values = jnp.ones((1, 6, dims))
  module = DeformableSpanAttention(dims, heads=1, points=1)
  spans = jnp.array([[[0.9, 0.4]]])
  params = module.init(jax.random.key(0), jnp.zeros((1, 1, dims)), spans, values, jnp.array([6]))
  p = _identity_attention_params(params['params'], dims, [2.0], 0)   # 0.9 + 2·0.2 = 1.3 > 1
  out, _ = module.apply({'params': p}, jnp.zeros((1, 1, dims)), spans, values, jnp.array([6]))
  np.testing.assert_array_equal(out, 0.0)


def test_rdsa_initial_positions_follow_the_tadtr_grid():
  np.testing.assert_allclose(tadtr_grid_bias(8, 1), [1, 0, -1, 0, 1, 0, -1, 0], atol=1e-6)
  np.testing.assert_allclose(tadtr_grid_bias(4, 2), [1, 2, -1, -2, 1, 2, -1, -2], atol=1e-6)
  rng = np.random.default_rng(0)
  dims, heads, points = 8, 4, 2
  dense = jnp.asarray(rng.normal(size=(2, 7, dims)), jnp.float32)
  mask = jnp.arange(7)[None] < jnp.array([[7], [5]])
  spans = jnp.asarray(rng.uniform(0.1, 0.6, size=(2, 3, 2)), jnp.float32)
  module = ReferenceDeformableSelfAttention(dims, heads, points)
  params = module.init(jax.random.key(1), spans, dense, mask)
  _, positions = module.apply(params, spans, dense, mask)
  grid = tadtr_grid_bias(heads, points).reshape(heads, points) / points
  want = spans[..., 0, None, None] + grid * spans[..., 1, None, None] / 2
  np.testing.assert_allclose(positions, want, atol=1e-6)
  # "PureInit": every point starts at the centre.
  module = ReferenceDeformableSelfAttention(dims, heads, points, offset_init='zeros')
  _, positions = module.apply(module.init(jax.random.key(1), spans, dense, mask), spans, dense,
                              mask)
  np.testing.assert_allclose(positions, jnp.broadcast_to(spans[..., 0, None, None],
                                                         positions.shape), atol=1e-7)


def test_rdsa_ignores_padded_clips():
  rng = np.random.default_rng(2)
  dims = 8
  dense = rng.normal(size=(1, 9, dims)).astype(np.float32)
  mask = np.arange(9)[None] < 6
  spans = jnp.asarray(rng.uniform(0.2, 0.8, size=(1, 3, 2)), jnp.float32)
  module = ReferenceDeformableSelfAttention(dims, 2, 2)
  params = module.init(jax.random.key(0), spans, jnp.asarray(dense), jnp.asarray(mask))
  garbage = dense.copy()
  garbage[:, 6:] = 1e3
  a, _ = module.apply(params, spans, jnp.asarray(dense), jnp.asarray(mask))
  b, _ = module.apply(params, spans, jnp.asarray(garbage), jnp.asarray(mask))
  c, _ = module.apply(params, spans, jnp.asarray(dense[:, :6]), jnp.ones((1, 6), bool))
  np.testing.assert_allclose(a, b, atol=1e-6)
  np.testing.assert_allclose(a, c, atol=1e-5)
