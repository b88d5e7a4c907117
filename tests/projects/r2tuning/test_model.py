"""R²-Tuning model: parameter counts, shapes, scan vs unrolled recurrence, padding invariance,
initialisation, and that it can learn."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxvg.projects.r2tuning import config as r2_config
from jaxvg_testing import small_r2tuning_config
from jaxvg.projects.r2tuning.losses import loss_fn
from jaxvg.projects.r2tuning.model import R2Step, R2Tuning, make_points
from jaxvg.modules.droppath import DropPath


small_config = small_r2tuning_config


def tvsum_config(c):
  c.model.update(dict(use_tef=False, strides=(1,), use_coord_head=False, merge_cls_sal=False))
  c.loss.update(dict(cls_type='dynamic_bce', sal_direction='row'))
  return c


def make_batch(c, lengths, query_lengths, t, l, seed=0):
  rng = np.random.default_rng(seed)
  b, m = len(lengths), c.model
  video_mask = np.arange(t)[None] < np.asarray(lengths)[:, None]
  query_mask = np.arange(l)[None] < np.asarray(query_lengths)[:, None]
  video = rng.normal(size=(b, t, m.num_layers, m.num_tokens, m.video_dims)) * video_mask[..., None, None, None]
  query = rng.normal(size=(b, l, m.num_layers, m.query_dims)) * query_mask[..., None, None]
  windows = np.stack([[[0.2 * n, 0.6 * n], [0.7 * n, 0.9 * n]] for n in lengths])
  saliency = rng.uniform(size=(b, t)) * video_mask
  return dict(video=jnp.asarray(video, jnp.float32), video_mask=jnp.asarray(video_mask),
              query=jnp.asarray(query, jnp.float32), query_mask=jnp.asarray(query_mask),
              windows=jnp.asarray(windows, jnp.float32), window_mask=jnp.ones((b, 2), bool),
              saliency=jnp.asarray(saliency, jnp.float32),
              pos_clip=jnp.asarray([n // 2 for n in lengths], jnp.int32),
              sample_mask=jnp.ones((b,), bool))


def init(c, batch, seed=0):
  return jax.jit(lambda b: R2Tuning(c.model).init({'params': jax.random.key(seed)}, b))(batch)


_APPLY = {}


def apply(c, params, batch, train: bool = False):
  """Jitted forward (dropout off: rates zeroed in training mode), one compiled function per
  (config, mode, shapes). Official padding only exists in training mode."""
  key = (c.model.to_json(), train)
  if key not in _APPLY:
    cfg = c.model
    if train:
      cfg = ml_collections.ConfigDict(cfg.to_dict())
      cfg.dropout = cfg.droppath = 0.0
    _APPLY[key] = jax.jit(lambda p, b, cfg=cfg: R2Tuning(cfg).apply(p, b, train=train))
  return _APPLY[key](params, batch)


LENGTHS, Q_LENGTHS, T, L = [16, 9, 3], [2, 4, 5], 16, 6


@pytest.fixture(scope='module')
def setup():
  """Small config, a bucketed batch with padded clips/tokens, params with nonzero scale/gate."""
  c = small_config()
  batch = make_batch(c, LENGTHS, Q_LENGTHS, T, L, seed=3)
  params = init(c, batch, seed=1)
  fresh = jax.tree.map(np.asarray, params)
  params = jax.tree.map(jnp.asarray, params)
  params['params']['adapter']['scale'] = jnp.array([0.3, -0.5, 0.8, 1.2])
  params['params']['adapter']['gate'] = jnp.array([0.4, -1.0, 2.0])
  return c, batch, params, apply(c, params, batch), fresh


def count(c):
  m = c.model
  batch = dict(video=jnp.zeros((1, 8, m.num_layers, m.num_tokens, m.video_dims)),
               video_mask=jnp.ones((1, 8), bool), query=jnp.zeros((1, 4, m.num_layers, m.query_dims)),
               query_mask=jnp.ones((1, 4), bool))
  shapes = jax.eval_shape(lambda: init(c, batch))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))


def test_parameter_counts_match_the_official_model():
  assert count(r2_config.base()) == 2_836_242
  assert count(tvsum_config(r2_config.base())) == 1_846_281


def test_output_shapes(setup):
  c, _, params, _, _ = setup
  for t, l in [(T, L), (8, 3)]:
    batch = make_batch(c, [t, max(1, t - 3), 2], [l, 1, 2], t, l)
    out = apply(c, params, batch)
    n = len(make_points(t, c.model.strides))
    k, d = c.model.num_layers, c.model.dims
    expected = dict(h=(3, t, d), query_emb=(3, d), coll_v=(k, 3, t, d), coll_q=(k, 3, l, d),
                    coll_q_emb=(k, 3, d), cls_logits=(3, n), reg=(3, n, 2), point_mask=(3, n),
                    saliency=(3, t), video_mask=(3, t))
    assert {key: v.shape for key, v in out.items()} == expected
    assert all(bool(jnp.isfinite(v).all()) for v in out.values())


def test_tvsum_variant_forward():
  c = tvsum_config(small_config())
  batch = make_batch(c, [8, 5], [3, 2], 8, 3)
  out = jax.jit(lambda b: R2Tuning(c.model).apply(
      R2Tuning(c.model).init({'params': jax.random.key(0)}, b), b))(batch)
  assert 'reg' not in out and out['cls_logits'].shape == (2, 8)
  # Single stride-1 level, no cosine merge: saliency = σ(class logit) on valid clips.
  expected = jax.nn.sigmoid(out['cls_logits']) * batch['video_mask']
  np.testing.assert_allclose(out['saliency'], expected, atol=1e-6)


def test_points_are_left_edges_with_official_ranges():
  points = make_points(9, (1, 2, 4, 8))
  expected = ([[i, 0, 2, 1] for i in range(9)] + [[2 * i, 2, 4, 2] for i in range(4)]
              + [[4 * i, 4, 8, 4] for i in range(2)] + [[0, 8, np.inf, 8]])
  np.testing.assert_array_equal(points, np.asarray(expected, np.float32))
  assert len(make_points(5, (1, 2, 4, 8))) == 5 + 2 + 1   # stride 8 skipped when T < 8


def test_scan_equals_unrolled_recurrence(setup):
  c, batch, params, out, _ = setup
  m, adapter = c.model, params['params']['adapter']
  b, k = len(LENGTHS), m.num_layers
  # Unrolled: official layer index i = K-1 .. 0, same shared weights, explicit TEF and PE.
  lengths = batch['video_mask'].sum(-1)
  t = jnp.arange(T, dtype=jnp.float32)[None]
  tef = jnp.stack([t / lengths[:, None], (t + 1) / lengths[:, None]], -1)[:, :, None]
  pos = jnp.arange(1, T + 1)[None] / (lengths[:, None] + 1e-6) * 2 * np.pi
  freq = 10000.0 ** (np.arange(m.dims) // 2 * 2 / m.dims)
  angle = pos[..., None] / freq
  pe = jnp.asarray(np.where(np.arange(m.dims) % 2 == 0, np.sin(angle), np.cos(angle)), jnp.float32)
  step = R2Step(m.dims, m.num_heads, m.ffn_ratio, m.dropout, m.droppath, False, False)
  consts = (batch['video'], batch['query'], tef, batch['video_mask'], batch['query_mask'], pe)
  run = jax.jit(lambda h, xs: step.apply({'params': adapter['step']}, h, xs, consts))
  h, coll_v = jnp.zeros((b, T, m.dims)), []
  for j, i in enumerate(range(k - 1, -1, -1)):  # step j reads layer i of the inputs
    gate = adapter['gate'][i] if i < k - 1 else jnp.float32(0.0)
    h, (cls, _) = run(h, (j, adapter['scale'][i], gate, jnp.bool_(j > 0)))
    coll_v.append(cls)
  h = jax.nn.relu(jnp.where(batch['video_mask'][..., None], h, 0.0))  # the pyramid's ReLU
  np.testing.assert_allclose(out['h'], h, atol=1e-5)
  np.testing.assert_allclose(out['coll_v'], jnp.stack(coll_v), atol=1e-5)
  # Per-layer scalars are indexed by layer: reversing them changes the result.
  flipped = jax.tree.map(lambda x: x, params)
  flipped['params']['adapter']['scale'] = adapter['scale'][::-1]
  assert float(jnp.abs(apply(c, flipped, batch)['h'] - out['h']).max()) > 1e-4


def test_padding_invariance_bucketed_batch_equals_one_by_one(setup):
  c, batch, params, out, _ = setup
  for i, (n, q) in enumerate(zip(LENGTHS, Q_LENGTHS)):
    single = dict(video=batch['video'][i:i + 1, :n], video_mask=batch['video_mask'][i:i + 1, :n],
                  query=batch['query'][i:i + 1, :q], query_mask=batch['query_mask'][i:i + 1, :q])
    ref = apply(c, params, single)
    np.testing.assert_allclose(out['h'][i, :n], ref['h'][0], atol=1e-5)
    np.testing.assert_allclose(out['query_emb'][i], ref['query_emb'][0], atol=1e-5)
    np.testing.assert_allclose(out['saliency'][i, :n], ref['saliency'][0], atol=1e-5)
    np.testing.assert_allclose(out['coll_v'][:, i, :n], ref['coll_v'][:, 0], atol=1e-5)
    valid = np.asarray(out['point_mask'][i])
    assert valid.sum() == ref['point_mask'].size and bool(ref['point_mask'].all())
    np.testing.assert_allclose(out['cls_logits'][i][valid], ref['cls_logits'][0], atol=1e-5)
    np.testing.assert_allclose(out['reg'][i][valid], ref['reg'][0], rtol=1e-5, atol=1e-5)


def test_official_padding_uses_padded_length_in_training_only(setup):
  c, batch, params, out, _ = setup
  c_off = small_config(official_padding=True)
  full = dict(batch, video_mask=jnp.ones_like(batch['video_mask']),
              query_mask=jnp.ones_like(batch['query_mask']))
  # Without padding the two modes are the same computation ...
  np.testing.assert_allclose(apply(c, params, full, train=True)['h'],
                             apply(c_off, params, full, train=True)['h'], atol=1e-5)
  # ... with padding the official mode lets it in (TEF/PE over T clips, padded query tokens).
  off = apply(c_off, params, batch, train=True)
  invariant = apply(c, params, batch, train=True)
  assert float(jnp.abs(off['h'][1, :9] - invariant['h'][1, :9]).max()) > 1e-3
  # Official point masks are max_pool(video_mask): the stride-2 point on clips 8, 9 counts.
  assert int(off['point_mask'][1].sum()) > int(invariant['point_mask'][1].sum())
  # Evaluation is padding-invariant in both modes (the official code validates one unpadded
  # sample at a time).
  np.testing.assert_allclose(apply(c_off, params, batch)['h'], out['h'], atol=1e-6)


def test_pytorch_style_initialisation(setup):
  c, *_, fresh = setup
  p = fresh['params']
  step, d = p['adapter']['step'], c.model.dims
  assert float(jnp.abs(p['adapter']['scale']).max()) == 0
  assert float(jnp.abs(p['adapter']['gate']).max()) == 0
  np.testing.assert_array_equal(p['coef'], np.ones(4))
  fan_in = c.model.video_dims + 2
  for leaf in step['video_map']['fc0'].values():   # U(±1/sqrt(fan_in)) for weight and bias
    assert 0.6 / np.sqrt(fan_in) < float(jnp.abs(leaf).max()) <= 1 / np.sqrt(fan_in)
  assert float(jnp.abs(p['class_head']['conv0']['bias']).max()) <= 1 / np.sqrt(3 * d)
  q = step['tem']['cross_att']['q']
  assert float(jnp.abs(q['bias']).max()) == 0
  assert float(jnp.abs(q['kernel']).max()) <= np.sqrt(6 / (2 * d))
  ffn = step['tem']['ffn']['fc0']   # N(0, 2/fan_out), fan_out = ratio·d
  assert abs(float(ffn['kernel'].std()) / np.sqrt(2 / (4 * d)) - 1) < 0.1
  assert float(jnp.abs(ffn['bias']).max()) == 0
  np.testing.assert_array_equal(step['tem']['ffn_norm']['scale'], np.ones(d))


def test_model_learns_a_fixed_batch():
  c = small_config(dropout=0.0, droppath=0.0)
  batch = make_batch(c, [8, 6], [3, 2], 8, 3, seed=7)
  params = init(c, batch)['params']
  model = R2Tuning(c.model)
  opt = optax.adamw(1e-3, weight_decay=1e-4)
  state = opt.init(params)

  @jax.jit
  def step(params, state):
    loss, grads = jax.value_and_grad(lambda p: loss_fn(model.apply({'params': p}, batch, True),
                                                       batch, c)[0])(params)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  losses = []
  for _ in range(150):
    params, state, loss = step(params, state)
    losses.append(float(loss))
  assert np.isfinite(losses).all()
  assert losses[-1] < 0.3 * losses[0], (losses[0], losses[-1])


def test_droppath_drops_whole_samples_and_rescales():
  x = jnp.ones((64, 3, 4))
  y = DropPath(0.25).apply({}, x, False, rngs={'droppath': jax.random.key(0)})
  per_sample = np.asarray(y).reshape(64, -1)
  assert np.isin(per_sample, np.float32([0.0, 1 / 0.75])).all()
  assert (per_sample.min(1) == per_sample.max(1)).all()          # one draw per sample
  assert 0 < (per_sample[:, 0] == 0).sum() < 64
  np.testing.assert_array_equal(DropPath(0.25).apply({}, x, True), x)
