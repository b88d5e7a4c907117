"""The decoder layer's pre-norm form (`jaxvg.modules.transformer.DecoderLayer(pre_norm=True)`).

The post-norm form is R²-Tuning's and is proven against the official code in
tests/projects/r2tuning/test_official_parity.py; these tests check what the pre-norm option is
for: a cross-attention that adds one large vector to every position leaves the positions'
differences intact, where post-norm scales them away.
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxvg.modules.transformer import DecoderLayer

B, T, L, C = 2, 6, 3, 16


def _inputs():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(B, T, C)), jnp.float32)
  # Every memory token alike: cross-attention gives the same vector at every position.
  mem = jnp.broadcast_to(jnp.asarray(rng.normal(size=(B, 1, C)), jnp.float32), (B, L, C))
  pe = jnp.asarray(rng.normal(size=(B, T, C)), jnp.float32)
  return x, mem, pe, jnp.ones((B, T), bool), jnp.ones((B, L), bool)


def _only_cross_attention(params, gain: float):
  """Self-attention and FFN silenced (their output maps zeroed); the cross-attention's output
  map scaled by `gain`, so that it adds a vector `gain` times larger to every position."""
  params = jax.tree.map(jnp.asarray, params)        # a copy: the caller's stays as it is
  for path in (('self_att', 'm'), ('ffn', 'fc1')):
    module = params[path[0]][path[1]]
    module['kernel'] = jnp.zeros_like(module['kernel'])
    module['bias'] = jnp.zeros_like(module['bias'])
  cross = params['cross_att']['m']
  cross['kernel'] = cross['kernel'] * gain
  cross['bias'] = cross['bias'] + gain
  return params


def _spread(y: jax.Array) -> jax.Array:
  """The positions' differences: each position minus the mean position."""
  return y - y.mean(axis=1, keepdims=True)


def test_pre_and_post_norm_share_their_parameters():
  x, mem, pe, x_mask, mem_mask = _inputs()
  shapes = [jax.tree.map(jnp.shape, DecoderLayer(C, 4, 2, 0.0, pre_norm=pre).init(
      jax.random.key(0), x, mem, pe, x_mask, mem_mask, False)) for pre in (False, True)]
  assert shapes[0] == shapes[1]


def test_pre_norm_keeps_the_positions_apart_under_a_shared_cross_attention_output():
  x, mem, pe, x_mask, mem_mask = _inputs()
  post, pre = DecoderLayer(C, 4, 2, 0.0), DecoderLayer(C, 4, 2, 0.0, pre_norm=True)
  params = post.init(jax.random.key(0), x, mem, pe, x_mask, mem_mask, False)['params']
  post_spread = {}
  for gain in (1.0, 100.0):
    p = {'params': _only_cross_attention(params, gain)}
    got = pre.apply(p, x, mem, pe, x_mask, mem_mask, False)
    # Pre-norm: x plus one vector shared by every position, so the spread is x's exactly.
    np.testing.assert_allclose(_spread(got), _spread(x), atol=1e-4 * gain)
    post_spread[gain] = jnp.abs(_spread(post.apply(p, x, mem, pe, x_mask, mem_mask,
                                                   False))).mean()
  # Post-norm: the larger the shared vector, the less of the positions' differences is left.
  assert post_spread[100.0] < 0.1 * post_spread[1.0]
