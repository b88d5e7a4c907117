"""The optimised R²-Tuning paths equal the straightforward ones: the re-associated logits
(`Linear.dual`, values and gradients), LayerNorm/Linear over parts instead of a concatenation,
the bit-packed dropout mask (distribution, scaling, fallback), and the unrolled scan (outputs and
gradients), and `model.impl='plain'` (the official composition as written) equals 'fused'. The
whole model's parity with the official code is in test_official_parity."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.projects.r2tuning import config as r2_config
from jaxvg.projects.r2tuning.losses import loss_fn
from jaxvg.projects.r2tuning.model import R2Tuning
from jaxvg.modules.layers import Dropout, LayerNorm, Linear, dropout_keep_mask


def test_linear_dual_equals_projecting_every_row():
  """key·f(x) through `Linear.dual` (on the key rows) equals projecting every x row: values and
  gradients w.r.t. the parameters and both inputs, with and without bias."""
  rng = np.random.default_rng(0)
  key = jnp.asarray(rng.normal(size=(2, 3, 8)), jnp.float32)
  x = jnp.asarray(rng.normal(size=(2, 4, 5, 6)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(2, 4, 3, 5)), jnp.float32)
  for use_bias in (True, False):
    layer = Linear(8, 6, use_bias=use_bias)
    params = layer.init(jax.random.key(0), x)['params']

    def fast(p, key, x):
      k, offset = layer.apply({'params': p}, key, method=Linear.dual)
      return jnp.einsum('bld,btpd->btlp', k, x) + offset[:, None, :, None]

    def straightforward(p, key, x):
      return jnp.einsum('blc,btpc->btlp', key, layer.apply({'params': p}, x))

    np.testing.assert_allclose(fast(params, key, x), straightforward(params, key, x),
                               rtol=1e-5, atol=1e-5)
    objective = lambda f: lambda *a: (jax.nn.softmax(f(*a), -1) * w).sum()  # noqa: E731
    grads = jax.grad(objective(fast), argnums=(0, 1, 2))(params, key, x)
    ref = jax.grad(objective(straightforward), argnums=(0, 1, 2))(params, key, x)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref)):
      np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)


def test_parts_equal_the_concatenation():
  """LayerNorm and Linear over [x, tail] equal them over concat([x, tail]) (values, gradients),
  with a per-clip tail broadcast against per-token features as the TEF is."""
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(2, 3, 4, 7)), jnp.float32)
  tail = jnp.asarray(rng.uniform(size=(2, 3, 1, 2)), jnp.float32)
  norm, linear = LayerNorm(), Linear(5, 9)
  norm_params = norm.init(jax.random.key(0), [x, tail])['params']
  norm_params = jax.tree.map(lambda p: p + jnp.asarray(rng.normal(size=p.shape), jnp.float32),
                             norm_params)
  linear_params = linear.init(jax.random.key(1), [x, tail])['params']
  assert linear_params['kernel'].shape == (9, 5) and norm_params['scale'].shape == (9,)

  def parts(pn, pl, x):
    return linear.apply({'params': pl}, norm.apply({'params': pn}, [x, tail]))

  def concat(pn, pl, x):
    joined = jnp.concatenate([x, jnp.broadcast_to(tail, x.shape[:-1] + (2,))], -1)
    mean = joined.mean(-1, keepdims=True)
    var = ((joined - mean)**2).mean(-1, keepdims=True)
    normed = (joined - mean) / jnp.sqrt(var + 1e-5) * pn['scale'] + pn['bias']
    return normed @ pl['kernel'] + pl['bias']

  np.testing.assert_allclose(parts(norm_params, linear_params, x),
                             concat(norm_params, linear_params, x), rtol=1e-5, atol=1e-5)
  objective = lambda f: lambda *a: jnp.sin(f(*a)).sum()  # noqa: E731
  grads = jax.grad(objective(parts), argnums=(0, 1, 2))(norm_params, linear_params, x)
  ref = jax.grad(objective(concat), argnums=(0, 1, 2))(norm_params, linear_params, x)
  for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref)):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('rate', [0.5, 0.25, 0.125])
def test_dyadic_dropout_mask_is_bernoulli(rate):
  n = 1 << 20
  keep = np.asarray(dropout_keep_mask(jax.random.key(3), rate, (n,)))
  # Keep frequency within 5 sigma of 1 - rate; neighbours (which share a random word) uncorrelated.
  sigma = np.sqrt(rate * (1 - rate) / n)
  assert abs(keep.mean() - (1 - rate)) < 5 * sigma
  both = (keep[:-1] & keep[1:]).mean()
  assert abs(both - (1 - rate)**2) < 5 * np.sqrt((1 - rate)**2 / n)
  # Different keys give different masks; a shape not a multiple of the word size works.
  other = np.asarray(dropout_keep_mask(jax.random.key(4), rate, (n,)))
  assert (keep != other).mean() > 0.1
  assert dropout_keep_mask(jax.random.key(3), rate, (3, 7, 5)).shape == (3, 7, 5)


def test_non_dyadic_rate_falls_back_to_bernoulli():
  key = jax.random.key(5)
  np.testing.assert_array_equal(dropout_keep_mask(key, 0.3, (64, 9)),
                                jax.random.bernoulli(key, 0.7, (64, 9)))


def test_dropout_scales_kept_values_and_is_identity_when_deterministic():
  x = jnp.arange(1.0, 1001.0).reshape(10, 100)
  y = Dropout(0.5).apply({}, x, False, rngs={'dropout': jax.random.key(0)})
  kept = np.asarray(y) != 0
  np.testing.assert_allclose(np.asarray(y)[kept], np.asarray(x)[kept] * 2.0)
  assert 0.3 < kept.mean() < 0.7
  np.testing.assert_array_equal(Dropout(0.5).apply({}, x, True), x)


def test_unrolled_scan_equals_rolled_outputs_and_gradients():
  c = r2_config.base()
  c.model.update(dict(dims=32, video_dims=16, query_dims=12, num_tokens=5, num_heads=4,
                      dropout=0.5))
  rng = np.random.default_rng(1)
  b, t, l, m = 2, 8, 4, c.model
  batch = dict(
      video=jnp.asarray(rng.normal(size=(b, t, m.num_layers, m.num_tokens, m.video_dims)),
                        jnp.float32),
      video_mask=jnp.asarray(np.arange(t)[None] < np.array([[8], [5]])),
      query=jnp.asarray(rng.normal(size=(b, l, m.num_layers, m.query_dims)), jnp.float32),
      query_mask=jnp.asarray(np.arange(l)[None] < np.array([[4], [2]])),
      windows=jnp.asarray([[[1.0, 4.0], [5.0, 7.0]], [[0.0, 2.0], [2.0, 4.0]]]),
      window_mask=jnp.ones((b, 2), bool),
      saliency=jnp.asarray(rng.uniform(size=(b, t)), jnp.float32),
      pos_clip=jnp.asarray([2, 1], jnp.int32), sample_mask=jnp.ones((b,), bool))
  params = R2Tuning(c.model).init(jax.random.key(0), batch)['params']
  rngs = {'dropout': jax.random.key(1), 'droppath': jax.random.key(2)}

  def loss_and_grads(unroll):
    cfg = c.copy_and_resolve_references()
    cfg.model.scan_unroll = unroll

    def loss(p):
      out = R2Tuning(cfg.model).apply({'params': p}, batch, train=True, rngs=rngs)
      return loss_fn(out, batch, cfg)[0]
    return jax.jit(jax.value_and_grad(loss))(params)

  (loss_rolled, g_rolled), (loss_unrolled, g_unrolled) = loss_and_grads(1), loss_and_grads(4)
  np.testing.assert_allclose(loss_unrolled, loss_rolled, rtol=1e-5)
  for g, r in zip(jax.tree.leaves(g_unrolled), jax.tree.leaves(g_rolled)):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('official_padding', [False, True])
def test_plain_and_fused_paths_are_the_same_model(official_padding):
  """`model.impl='plain'` (the official composition) and 'fused' give the same outputs, losses
  and gradients, with dropout on (the same masks), on a padded batch."""
  from jaxvg.data.temporal import dummy_batch
  results = {}
  for impl in ('plain', 'fused'):
    c = r2_config.base()
    c.model.update(dims=32, num_heads=4, video_dims=24, query_dims=16, num_tokens=5,
                   impl=impl, official_padding=official_padding)
    c.data.t_buckets, c.data.l_buckets, c.data.max_windows = (16,), (6,), 2
    rng = np.random.default_rng(0)
    batch = {k: np.array(v) for k, v in dummy_batch(c, 3).items()}
    batch['video'] = rng.normal(size=batch['video'].shape).astype(np.float32)
    batch['query'] = rng.normal(size=batch['query'].shape).astype(np.float32)
    batch['video_mask'] = np.arange(16)[None] < np.array([[16], [11], [7]])
    batch['query_mask'] = np.arange(6)[None] < np.array([[6], [3], [4]])
    batch['windows'][:, 0] = [[1, 5], [2, 9], [0, 3]]
    batch['window_mask'][:, 0] = True
    batch['saliency'] = rng.uniform(size=(3, 16)).astype(np.float32) * batch['video_mask']
    model = R2Tuning(c.model)
    params = model.init({'params': jax.random.key(0)}, batch, train=False)['params']
    rngs = {'dropout': jax.random.key(1), 'droppath': jax.random.key(2)}

    def loss(p):
      out = model.apply({'params': p}, batch, train=True, rngs=rngs)
      return loss_fn(out, batch, c)[0], out
    (value, out), grads = jax.value_and_grad(loss, has_aux=True)(params)
    results[impl] = (value, out, grads)
  (v_p, out_p, g_p), (v_f, out_f, g_f) = results['plain'], results['fused']
  np.testing.assert_allclose(v_f, v_p, rtol=1e-5)
  for key in ('cls_logits', 'reg', 'saliency', 'h'):
    np.testing.assert_allclose(out_f[key], out_p[key], rtol=1e-4, atol=1e-5, err_msg=key)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5), g_f, g_p)
