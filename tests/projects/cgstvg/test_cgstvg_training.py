"""CG-STVG through the task contract: the engine's optimiser with the task's parameter groups
fits one small batch (dropout on); the ResNet's frozen parts are labelled frozen."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from configs.cgstvg import synthetic
from jaxvg import registry
from jaxvg.projects.cgstvg.optim import param_labels
from jaxvg.train.optim import make_optimizer


# Compile fast, run slow: this test's cost is XLA compiling the backward pass.
FAST_COMPILE = {'xla_backend_optimization_level': 0, 'xla_llvm_disable_expensive_passes': True}


def tiny_config():
  c = synthetic.get_config()
  c.model.use_swin = False          # fed C5 alone
  c.model.enc_layers = 1
  c.model.dec_layers = 1
  c.model.text.layers = 1
  c.model.max_video_len = 8
  c.optim.lr = 1e-3
  c.optim.groups.text.lr_scale = 1.0
  c.optim.groups.temporal.lr_scale = 1.0
  del c.optim.groups['backbone'], c.optim.groups['frozen']   # fed C5: no ResNet parameters
  return c


def batch():
  rng = np.random.default_rng(0)
  b, t = 2, 4
  boxes = np.tile(np.array([0.4, 0.5, 0.3, 0.4], np.float32), (b, t, 1))
  in_span = np.array([[False, True, True, False], [True, True, True, True]])
  return {'c5': rng.standard_normal((b, t, 2, 2, 2048)).astype(np.float32),
          'frame_mask': np.array([[True] * 4, [True, True, True, False]]),
          'tokens': rng.integers(3, 100, (b, 5)).astype(np.int32),
          'text_mask': np.array([[True] * 5, [True] * 3 + [False] * 2]),
          'boxes': boxes, 'box_mask': in_span, 'in_span': in_span,
          'sample_mask': np.ones(b, bool)}


def test_task_fits_a_batch():
  config = tiny_config()
  task = registry.get_task('cgstvg')
  model, training = task.build_model(config), task.training
  data = batch()
  params = jax.jit(model.init, compiler_options=FAST_COMPILE)(jax.random.key(0), data)['params']
  labels = training.param_labels(config, params)
  assert labels is not None and set(jax.tree.leaves(labels)) == {'base', 'text', 'temporal',
                                                                 'tube_span'}
  tx = make_optimizer(config.optim, steps_per_epoch=100, labels=labels)
  opt_state = tx.init(params)

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
  def step(params, opt_state, key):
    def loss_of(p):
      out = model.apply({'params': p}, data, train=True, rngs={'dropout': key})
      return training.loss_fn(out, data, config)
    (loss, terms), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return jax.tree.map(jnp.add, params, updates), opt_state, loss, grads

  losses = []
  for i in range(12):
    params, opt_state, loss, grads = step(params, opt_state, jax.random.key(i))
    losses.append(float(loss))
  assert np.isfinite(losses).all()
  assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
  assert float(jnp.abs(grads['bbox_embed']['layers_2']['kernel']).max()) > 0


def test_frozen_resnet_parts_are_labelled_frozen():
  """Official stages (layer2-4 train) on the toy ResNet's names; stage 0 is the stem."""
  config = synthetic.get_config()
  config.model.train_resnet_stages = (2, 3, 4)
  task = registry.get_task('cgstvg')
  params = jax.eval_shape(lambda: task.build_model(config).init(
      jax.random.key(0), task.dummy_batch(config, 1)))['params']
  labels = param_labels(config, params)['resnet']
  assert labels['conv1']['kernel'] == 'frozen'
  assert labels['layer1_0']['conv2']['kernel'] == 'frozen'
  assert labels['layer2_0']['conv2']['kernel'] == 'backbone'
  assert labels['layer2_0']['bn2']['running_var'] == 'frozen'
  assert labels['layer4_0']['downsample_1']['weight'] == 'frozen'
  assert labels['layer4_0']['downsample_0']['kernel'] == 'backbone'
  config.model.train_resnet_stages = (0, 1)
  labels = param_labels(config, params)['resnet']
  assert labels['conv1']['kernel'] == labels['layer1_0']['conv1']['kernel'] == 'backbone'
  assert labels['layer2_0']['conv2']['kernel'] == 'frozen'
