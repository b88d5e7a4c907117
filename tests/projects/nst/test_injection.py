"""NST on a small linen model: the HQ guarantee (q = 0 leaves the frozen layers and the whole
model unchanged, for trained residuals), the skip-path declarations, LoRA, labels, the QAU BCE."""
import warnings

import numpy as np
import optax
import pytest

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxvg.modules import nullspace
from jaxvg.projects.nst import injection, losses, units
from jaxvg.projects.nst.config import NSTConfig, PointSpec

POINTS = ('conv', 'block/fc2')


class Block(nn.Module):
  """h + fc2(gelu(fc1(h))): fc1's input h also feeds the skip; fc2's input feeds only fc2."""

  @nn.compact
  def __call__(self, h):
    return h + nn.Dense(h.shape[-1], name='fc2')(nn.gelu(nn.Dense(64, name='fc1')(h)))


class Toy(nn.Module):
  """(B, T, H, W, 12) frames → 1×1 conv to 8 → pool → Dense 32 → residual block → 3 logits."""
  NST_INPUTS = {'conv': 'exclusive', 'block/fc2': 'exclusive', 'block/fc1': 'shared'}

  @nn.compact
  def __call__(self, frames, train=False):
    x = nn.Conv(8, (1, 1), name='conv')(frames).mean((2, 3))
    x = Block(name='block')(nn.Dense(32, name='up')(x))
    return {'logits': nn.Dense(3, name='head')(x.mean(1)), 'features': x}


FRAMES = jax.random.normal(jax.random.key(0), (2, 3, 4, 5, 12))


def _setup(method='nst', **fields):
  nst = NSTConfig(method=method, points=(PointSpec('conv', (-3, -2)), PointSpec('block/fc2')),
                  generator_hidden=16, quality_hidden=8, **fields)
  base, model = Toy(), injection.Tuned(Toy(), nst)
  base_vars = jax.jit(base.init)(jax.random.key(1), FRAMES)
  variables = jax.jit(model.init)(jax.random.key(2), FRAMES)
  variables['params']['base'] = base_vars['params']
  variables, _ = injection.attach_nullspace(variables, base, nst)
  return base, model, base_vars, variables, nst


def _randomise_units(variables, scale=0.5):
  """Random non-zero unit parameters, as after training (the base stays as it is)."""
  rng = np.random.default_rng(3)
  params = dict(variables['params'])
  units = jax.tree.map(lambda leaf: jnp.asarray(scale * rng.normal(size=leaf.shape), jnp.float32),
                       {k: v for k, v in params.items() if k != 'base'})
  return {**variables, 'params': {**units, 'base': params['base']}}


def _layer_outputs(model, variables, **kwargs):
  """Model outputs and the outputs of the two point layers, in one compiled call."""
  capture = lambda module, method: module.path[-1:] in (('conv',), ('fc2',))

  @jax.jit
  def run(variables):
    return model.apply(variables, FRAMES, capture_intermediates=capture,
                       mutable=['intermediates'], **kwargs)
  out, state = run(variables)
  return out, state['intermediates']


def test_q_zero_keeps_frozen_layers_and_model_outputs():
  base, model, base_vars, variables, _ = _setup()
  trained = _randomise_units(variables)
  base_out, base_layers = _layer_outputs(base, base_vars)
  for quality in (0.0, None):  # q = 0 forced; the QAU's own (soft) q differs from 0
    out, layers = _layer_outputs(model, trained, quality=quality, train=True)
    exact = quality == 0.0
    for path in ('conv', 'fc2'):
      ours = layers['base'][path]['__call__'][0] if path == 'conv' else \
          layers['base']['block']['fc2']['__call__'][0]
      ref = base_layers[path]['__call__'][0] if path == 'conv' else \
          base_layers['block']['fc2']['__call__'][0]
      error = float(jnp.abs(ours - ref).max() / jnp.abs(ref).max())
      assert error < 1e-5 if exact else error > 1e-3, (path, quality, error)
    if exact:
      np.testing.assert_allclose(out['logits'], base_out['logits'], rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(out['features'], base_out['features'], rtol=1e-5, atol=1e-6)
  assert not np.allclose(out['logits'], base_out['logits'], atol=1e-3)


def test_hard_gate_on_hq_input_is_the_base():
  base, model, base_vars, variables, _ = _setup(quality_init_bias=-8.0)  # QAU says HQ
  trained = _randomise_units(variables)
  for unit in ('conv', 'block.fc2'):  # keep the trained QAU confident on these inputs
    trained['params'][f'quality_{unit}']['Dense_1']['bias'] = jnp.full((1,), -50.0)
  base_out = base.apply(base_vars, FRAMES)
  out = model.apply(trained, FRAMES, train=False)
  np.testing.assert_allclose(out['logits'], base_out['logits'], rtol=1e-5, atol=1e-6)
  soft = model.apply(trained, FRAMES, quality=1.0)
  assert not np.allclose(soft['logits'], base_out['logits'], atol=1e-3)


def test_null_part_is_invisible_to_every_point():
  _, model, _, variables, _ = _setup()
  trained = _randomise_units(variables)
  kernels = {'conv': trained['params']['base']['conv']['kernel'].reshape(12, 8),
             'block.fc2': trained['params']['base']['block']['fc2']['kernel']}
  for unit, kernel in kernels.items():
    x = jax.random.normal(jax.random.key(4), (50, kernel.shape[0]))
    residual = units.DualSpaceResidual(16)
    delta = residual.apply({'params': trained['params'][f'residual_{unit}'],
                            'nullspace': trained['nullspace'][f'residual_{unit}']}, x, 0.0)
    w, d = np.asarray(kernel, np.float64).T, np.asarray(delta, np.float64).T
    assert np.linalg.norm(d) > 1e-2
    ratio = np.linalg.norm(w @ d) / (np.linalg.norm(w, 2) * np.linalg.norm(d))
    assert ratio < 1e-6, (unit, ratio)


def test_starts_as_identity_and_only_units_train():
  base, model, base_vars, variables, nst = _setup()
  base_out = base.apply(base_vars, FRAMES)
  np.testing.assert_array_equal(model.apply(variables, FRAMES, quality=1.0)['logits'],
                                base_out['logits'])
  labels = injection.trainable_labels(variables['params'], nst)
  assert set(jax.tree.leaves(labels['base'])) == {injection.FROZEN}
  tx = injection.optimizer(optax.sgd(1.0), variables['params'], nst)
  grads = jax.tree.map(jnp.ones_like, variables['params'])
  updates, _ = tx.update(grads, tx.init(variables['params']), variables['params'])
  assert all(float(jnp.abs(u).max()) == 0 for u in jax.tree.leaves(updates['base']))
  assert all(float(jnp.abs(u).max()) == 1 for k, v in updates.items() if k != 'base'
             for u in jax.tree.leaves(v))
  lines = injection.describe(variables, base, nst)
  assert lines[0] == 'conv: kernel (1, 1, 12, 8), input exclusive, null-space dim 4'
  assert lines[1] == 'block/fc2: kernel (64, 32), input exclusive, null-space dim 32'
  assert lines[-1].startswith('trainable parameters (nst): ')


def test_bases_recomputed_only_when_the_frozen_weights_change():
  base, _, _, variables, nst = _setup()
  again, recomputed = injection.attach_nullspace(variables, base, nst)
  assert recomputed == []
  again['params']['base']['block']['fc2']['kernel'] *= 2.0
  _, recomputed = injection.attach_nullspace(again, base, nst)
  assert recomputed == ['block/fc2']


def test_skip_path_inputs_are_refused_or_flagged():
  base = Toy()
  shared = NSTConfig(points=(PointSpec('block/fc1'),))
  with pytest.raises(injection.InjectionPointError, match='skip path'):
    injection.resolve_points(base, shared)
  with pytest.raises(injection.InjectionPointError, match='does not declare'):
    injection.resolve_points(base, NSTConfig(points=(PointSpec('up'),)))
  declared = NSTConfig(points=(PointSpec('up'),), declared_inputs=(('up', 'exclusive'),))
  assert injection.resolve_points(base, declared)[0].consumers == 'exclusive'
  with pytest.warns(UserWarning, match='shared input'):
    [point] = injection.resolve_points(base, NSTConfig(points=(PointSpec('block/fc1'),),
                                                       allow_shared_inputs=True))
  assert point.flagged
  # LoRA changes only the layer's output: no declaration needed.
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    injection.resolve_points(base, NSTConfig(method='lora', points=(PointSpec('block/fc1'),)))


def test_why_shared_inputs_are_refused():
  """A residual in N(fc1) added to fc1's input feature h is invisible to fc1 but reaches the
  block's output whole, through the skip."""
  keys = jax.random.split(jax.random.key(5), 4)
  h = jax.random.normal(keys[0], (4, 32))
  w1 = jax.random.normal(keys[1], (32, 16)) / 6  # a down-projection: null dim 16
  w2 = jax.random.normal(keys[2], (16, 32)) / 4
  block = lambda feature: feature + nn.gelu(feature @ w1) @ w2
  v = nullspace.split(jax.random.normal(keys[3], h.shape), nullspace.basis_entry(w1))[0]
  np.testing.assert_allclose(v @ w1, 0, atol=1e-5)
  assert float(jnp.linalg.norm(v)) > 1
  np.testing.assert_allclose(block(h + v) - block(h), v, atol=1e-5)


def test_non_pointwise_layer_is_refused():
  nst = NSTConfig(points=(PointSpec('head'),), declared_inputs=(('head', 'exclusive'),))
  model = injection.Tuned(Toy(), nst)
  variables = model.init(jax.random.key(0), FRAMES)
  variables['params']['base']['head']['kernel'] = jnp.zeros((2, 32, 3))
  with pytest.raises(injection.InjectionPointError, match='not a Dense'):
    model.apply(variables, FRAMES)


def test_lora_starts_at_the_base_and_moves_hq_outputs():
  base, model, base_vars, variables, nst = _setup('lora', lora_rank=2)
  base_out = base.apply(base_vars, FRAMES)
  np.testing.assert_array_equal(model.apply(variables, FRAMES)['logits'], base_out['logits'])
  assert variables['params']['lora_block.fc2']['up'].shape == (2, 32)
  trained = _randomise_units(variables)
  assert not np.allclose(model.apply(trained, FRAMES)['logits'], base_out['logits'], atol=1e-3)
  full = NSTConfig(method='full', points=nst.points)
  labels = injection.trainable_labels({'base': base_vars['params']}, full)
  assert labels['base']['conv']['kernel'] == injection.TRAINABLE
  assert labels['base']['up']['kernel'] == injection.FROZEN


def test_quality_bce_against_labels():
  _, model, _, variables, _ = _setup()
  _, state = model.apply(variables, FRAMES, train=True, mutable=['nst_quality'])
  conv_logits = state['nst_quality']['quality_conv']['logits'][0]
  assert conv_logits.shape == (2, 3, 1, 1, 1)  # one score per frame
  labels = jnp.array([0.0, 1.0])
  loss = losses.quality_bce(state['nst_quality'], labels)
  leaves = [l.reshape(2, -1) for l in jax.tree.leaves(state['nst_quality'])]
  expected = np.mean(np.concatenate([np.asarray(optax.sigmoid_binary_cross_entropy(
      l, jnp.broadcast_to(labels[:, None], l.shape))).ravel() for l in leaves]))
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  masked = losses.quality_bce(state['nst_quality'], labels, jnp.array([True, False]))
  only_first = np.mean(np.concatenate([np.asarray(optax.sigmoid_binary_cross_entropy(
      l[0], 0.0)).ravel() for l in leaves]))
  np.testing.assert_allclose(masked, only_first, rtol=1e-6)


def test_frozen_base_passes_gradients_only_to_the_layers_full_tunes():
  for method, moving in (('full', {'conv', 'block/fc2'}), ('nst', set())):
    nst = NSTConfig(method=method, points=(PointSpec('conv', (-3, -2)), PointSpec('block/fc2')))
    model = injection.frozen_base(Toy, nst)()
    params = jax.jit(model.init)(jax.random.key(1), FRAMES)['params']
    grads = jax.grad(lambda p: jnp.sum(model.apply({'params': p}, FRAMES)['logits'] ** 2))(params)
    norms = {'/'.join(key.key for key in path[:-1]): float(jnp.linalg.norm(g))
             for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]
             if path[-1].key == 'kernel'}
    assert {name for name, norm in norms.items() if norm > 0} == moving, (method, norms)
