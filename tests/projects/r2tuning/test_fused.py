"""The fused ops with hand-written VJPs equal the compositions they replace: values and every
gradient (parameters and inputs), with and without dropout masks, float16 features with a
broadcast float32 TEF part as R²-Tuning feeds them, and a bf16 kernel computing in bf16; the
masked max equals autodiff's max, ties and all-masked rows included."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.projects.r2tuning.fused import masked_max, norm_dropout_linear, relu_norm_dropout

RATE, EPS = 0.5, 1e-5


def _norm(x, scale, bias):
  mean = x.mean(-1, keepdims=True)
  var = jnp.square(x - mean).mean(-1, keepdims=True)
  return (x - mean) / jnp.sqrt(var + EPS) * scale + bias


def _drop(x, mask):
  return x if mask is None else jnp.where(mask, x / (1 - RATE), 0.0)


@pytest.fixture
def inputs():
  rng = np.random.default_rng(0)
  b, t, p, d, f = 2, 3, 5, 16, 8
  arrays = dict(
      features=rng.normal(size=(b, t, p, d)).astype(np.float16),
      tef=rng.uniform(size=(b, t, 1, 2)).astype(np.float32),
      scale=rng.normal(size=(d + 2,)), bias=rng.normal(size=(d + 2,)),
      kernel=rng.normal(size=(d + 2, f)), linear_bias=rng.normal(size=(f,)),
      weights=rng.normal(size=(b, t, p, f)),
      masks=(rng.uniform(size=(b, t, p, d)) > RATE, rng.uniform(size=(b, t, p, 2)) > RATE),
      hidden=rng.normal(size=(b, t, p, f)), hidden_mask=rng.uniform(size=(b, t, p, f)) > RATE,
      scale1=rng.normal(size=(f,)), bias1=rng.normal(size=(f,)))
  return {k: (v if isinstance(v, tuple) else jnp.asarray(v)) for k, v in arrays.items()}


def _assert_trees_close(got, want, rtol=1e-4, atol=1e-5):
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    assert g.dtype == w.dtype and g.shape == w.shape
    np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(w, np.float32), rtol=rtol,
                               atol=atol)


@pytest.mark.parametrize('with_masks', [False, True])
def test_norm_dropout_linear_equals_the_composition(inputs, with_masks):
  masks = inputs['masks'] if with_masks else None
  tef = inputs['tef']

  def fused(features, tef, scale, bias, kernel, linear_bias):
    return norm_dropout_linear([features, tef], masks, scale, bias, kernel, linear_bias,
                               rate=RATE, epsilon=EPS)

  def composed(features, tef, scale, bias, kernel, linear_bias):
    joined = jnp.concatenate([features.astype(jnp.float32),
                              jnp.broadcast_to(tef, features.shape[:-1] + (2,))], -1)
    mask = None if masks is None else jnp.concatenate(masks, -1)
    return _drop(_norm(joined, scale, bias), mask) @ kernel + linear_bias

  args = (inputs['features'], tef, inputs['scale'], inputs['bias'], inputs['kernel'],
          inputs['linear_bias'])
  _assert_trees_close(fused(*args), composed(*args))
  objective = lambda f: lambda *a: (jnp.tanh(f(*a)) * inputs['weights']).sum()  # noqa: E731
  grads = jax.jit(jax.grad(objective(fused), argnums=tuple(range(6))))(*args)
  want = jax.grad(objective(composed), argnums=tuple(range(6)))(*args)
  # The float16 features' gradient is rounded to float16 by both.
  _assert_trees_close(grads[1:], want[1:])
  _assert_trees_close(grads[0], want[0], rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize('with_mask', [False, True])
def test_relu_norm_dropout_equals_the_composition(inputs, with_mask):
  mask = inputs['hidden_mask'] if with_mask else None

  def fused(x, scale, bias):
    return relu_norm_dropout(x, mask, scale, bias, rate=RATE, epsilon=EPS)

  def composed(x, scale, bias):
    return _drop(_norm(jax.nn.relu(x), scale, bias), mask)

  args = (inputs['hidden'], inputs['scale1'], inputs['bias1'])
  _assert_trees_close(fused(*args), composed(*args))
  objective = lambda f: lambda *a: (jnp.tanh(f(*a)) * inputs['weights']).sum()  # noqa: E731
  _assert_trees_close(jax.jit(jax.grad(objective(fused), argnums=(0, 1, 2)))(*args),
                      jax.grad(objective(composed), argnums=(0, 1, 2))(*args))


def test_bf16_kernel_computes_in_bf16_close_to_fp32(inputs):
  """bf16 compute: the product runs (and returns) in bf16, the statistics stay fp32, and every
  gradient comes back in its parameter's dtype."""
  args = [inputs['scale'], inputs['bias'], inputs['kernel'], inputs['linear_bias']]
  parts = [inputs['features'], inputs['tef']]

  def run(dtype):
    cast = [a.astype(dtype) for a in args]
    f = lambda *p: norm_dropout_linear(parts, inputs['masks'], *p, rate=RATE,  # noqa: E731
                                       epsilon=EPS)
    out = f(*cast)
    grads = jax.grad(lambda *p: (f(*p).astype(jnp.float32) * inputs['weights']).sum(),
                     argnums=(0, 1, 2, 3))(*cast)
    return out, grads

  out16, grads16 = run(jnp.bfloat16)
  out32, grads32 = run(jnp.float32)
  assert out16.dtype == jnp.bfloat16
  assert all(g.dtype == jnp.bfloat16 for g in grads16)
  scale = float(jnp.abs(out32).max())
  np.testing.assert_allclose(np.asarray(out16, np.float32), out32, atol=0.02 * scale)
  for g16, g32 in zip(grads16, grads32):
    np.testing.assert_allclose(np.asarray(g16, np.float32), g32,
                               atol=0.03 * float(jnp.abs(g32).max()))


def _reference_masked_max(x, mask):
  if mask is None:
    return x.max(2)
  return jnp.where(mask.any(2), jnp.where(mask, x, -jnp.inf).max(2), 0.0)


@pytest.mark.parametrize('masked', [True, False])
def test_masked_max_equals_autodiff_max(masked):
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(3, 4, 6, 5)), jnp.float32)
  weights = jnp.asarray(rng.normal(size=(3, 4, 5)), jnp.float32)
  # Sample 0: two valid tokens; sample 1: none (output and gradient 0); sample 2: all.
  mask = (jnp.asarray([[1, 1, 0, 0, 0, 0], [0] * 6, [1] * 6], bool)[:, None, :, None]
          if masked else None)
  np.testing.assert_array_equal(masked_max(x, mask, axis=2), _reference_masked_max(x, mask))
  got = jax.grad(lambda x: (masked_max(x, mask, axis=2) * weights).sum())(x)
  want = jax.grad(lambda x: (_reference_masked_max(x, mask) * weights).sum())(x)
  np.testing.assert_array_equal(got, want)
  if masked:
    assert not np.any(got[1]) and not np.any(got[0][:, 2:])


def test_masked_max_passes_nan_and_inf_of_valid_rows_through():
  """Only rows with no valid entry become 0: a NaN or +inf among valid entries is the max."""
  x = jnp.asarray([[[1.0], [jnp.nan]], [[jnp.inf], [2.0]], [[3.0], [4.0]]], jnp.float32)
  mask = jnp.asarray([[1, 1], [1, 1], [0, 0]], bool)[:, :, None]
  got = np.asarray(masked_max(x, mask, axis=1))
  assert np.isnan(got[0, 0]) and got[1, 0] == np.inf and got[2, 0] == 0.0


def test_masked_max_ties_of_identical_entries_give_autodiff_parameter_gradient():
  """Official padding: padded query tokens are one function of the inputs, so they tie; the
  max then sends the whole gradient to the first of them, autodiff splits it, and a parameter
  they share gets the same gradient either way."""
  rng = np.random.default_rng(2)
  base = jnp.asarray(rng.normal(size=(2, 3, 4, 5)), jnp.float32)
  weights = jnp.asarray(rng.normal(size=(2, 3, 5)), jnp.float32)

  def tokens(theta):  # tokens 2 and 3 identical (padded), both driven by theta
    padded = jnp.broadcast_to(theta * 10.0, base.shape[:2] + (2, base.shape[-1]))
    return jnp.concatenate([base[:, :, :2], padded], axis=2)

  theta = jnp.float32(0.7)
  got = jax.grad(lambda t: (masked_max(tokens(t), None, axis=2) * weights).sum())(theta)
  want = jax.grad(lambda t: (tokens(t).max(2) * weights).sum())(theta)
  np.testing.assert_allclose(got, want, rtol=1e-5)  # summation order only
