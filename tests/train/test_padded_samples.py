"""Samples that only pad a batch (the last batch of an epoch) change no loss and no gradient.

An all-padding sample has length 0; before positions were guarded it produced inf/NaN in the
forward pass, finite losses (masked) and NaN gradients, which silently poisoned the parameters.
"""
import jax
import numpy as np

from jaxvg import registry
from test_precision import _batch, _small_config  # noqa: E402  (same small model and batch)


def _loss_and_grads(config, task, model, params, batch):
  def loss(p):
    outputs = model.apply({'params': p}, batch, train=False)
    return task.training.loss_fn(outputs, batch, config)[0]
  batch = jax.tree.map(jax.numpy.asarray, batch)
  return jax.jit(jax.value_and_grad(loss))(params)


def test_padding_sample_changes_no_loss_and_no_gradient():
  config = _small_config()
  task = registry.get_task('r2tuning')
  model = task.build_model(config)
  batch = _batch(config, task)
  params = model.init({'params': jax.random.key(0)}, batch, train=False)['params']
  real = {k: np.asarray(v)[:3] for k, v in batch.items()}
  padded = {k: np.asarray(v).copy() for k, v in batch.items()}
  for key in ('video_mask', 'query_mask', 'window_mask', 'sample_mask'):
    padded[key][3] = False
  padded['video'][3] = 0.0
  padded['query'][3] = 0.0
  padded['saliency'][3] = 0.0
  loss_real, grads_real = _loss_and_grads(config, task, model, params, real)
  loss_padded, grads_padded = _loss_and_grads(config, task, model, params, padded)
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads_padded))
  np.testing.assert_allclose(float(loss_padded), float(loss_real), rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7),
               grads_padded, grads_real)
