"""The fused ops with hand-written VJPs equal the compositions they replace: values and every
gradient (parameters and inputs), with and without dropout masks, float16 features with a
broadcast float32 TEF part as R²-Tuning feeds them, and a bf16 kernel computing in bf16."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.modules.fused import norm_dropout_linear, relu_norm_dropout

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
