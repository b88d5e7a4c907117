"""CG-STVG through the task contract: the engine's optimiser with the task's parameter groups
fits one small batch (dropout on), frozen parameters stay put, and inference never needs targets."""
import jax
import jax.numpy as jnp
import numpy as np

from configs.cgstvg import synthetic
from jaxvg import registry
from jaxvg.projects.cgstvg.optim import param_labels
from jaxvg.train.optim import make_optimizer


def tiny_config():
  c = synthetic.get_config()
  c.model.enc_layers = 1
  c.model.dec_layers = 2
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
  params = jax.jit(model.init)(jax.random.key(0), data)['params']
  labels = training.param_labels(config, params)
  assert labels is not None and set(jax.tree.leaves(labels)) == {'base', 'text', 'temporal'}
  tx = make_optimizer(config.optim, steps_per_epoch=100, labels=labels)
  opt_state = tx.init(params)

  @jax.jit
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
  # context MLPs learn only through the ground-truth context; the boxes through L1/GIoU
  assert float(jnp.abs(grads['bbox_embed']['layers_2']['kernel']).max()) > 0

  # inference reads no targets: they can be absent
  plain = {k: v for k, v in data.items() if k not in ('boxes', 'box_mask', 'in_span')}
  out = jax.jit(lambda p, b: model.apply({'params': p}, b, train=False))(params, plain)
  assert out['boxes'].shape == (2, 2, 4, 4)


def test_frozen_resnet_parts_are_labelled_frozen():
  config = synthetic.get_config()
  params = jax.eval_shape(lambda: registry.get_task('cgstvg').build_model(config).init(
      jax.random.key(0), registry.get_task('cgstvg').dummy_batch(config, 1)))['params']
  labels = param_labels(config, params)['resnet']
  assert labels['conv1']['kernel'] == 'frozen'
  assert labels['layer1_0']['conv2']['kernel'] == 'frozen'
  assert labels['layer2_0']['conv2']['kernel'] == 'backbone'
  assert labels['layer2_0']['bn2']['running_var'] == 'frozen'
  assert labels['layer4_0']['downsample_1']['weight'] == 'frozen'
  assert labels['layer4_0']['downsample_0']['kernel'] == 'backbone'
