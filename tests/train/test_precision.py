"""Precision policy: bf16 compute keeps fp32 master parameters and optimiser state, and stays
close to the fp32 step; frozen backbones never enter the train state."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxvg import registry
from jaxvg_testing import small_r2tuning_config
from jaxvg.train import optim, step as step_lib
from jaxvg.train.state import TrainState


def _small_config():
  c = small_r2tuning_config()
  c.data.update(dict(t_buckets=(16,), l_buckets=(6,), max_windows=2))
  c.optim.warmup_steps = 0
  return c


def _batch(config, task):
  batch = task.dummy_batch(config, 4)
  rng = np.random.default_rng(0)
  batch['video'] = rng.standard_normal(batch['video'].shape).astype(np.float32)
  batch['query'] = rng.standard_normal(batch['query'].shape).astype(np.float32)
  batch['video_mask'] = np.arange(16)[None] < np.array([[16], [11], [7], [16]])
  batch['windows'] = np.array([[[2, 6], [9, 14]], [[0, 3], [0, 0]], [[4, 7], [0, 0]],
                               [[1, 15], [0, 0]]], np.float32)
  batch['window_mask'] = np.array([[1, 1], [1, 0], [1, 0], [1, 0]], bool)
  batch['saliency'] = rng.uniform(size=(4, 16)).astype(np.float32) * batch['video_mask']
  batch['pos_clip'] = np.array([3, 1, 5, 2], np.int32)
  return batch


def test_bf16_step_keeps_fp32_state_and_tracks_fp32():
  losses, states = {}, {}
  for precision in ('fp32', 'bf16'):
    config = _small_config()
    config.train.precision = precision
    task = registry.get_task('r2tuning')
    model = task.build_model(config)
    batch = _batch(config, task)
    params = model.init({'params': jax.random.key(0)}, batch, train=False)['params']
    tx = optim.make_optimizer(config.optim, 10)
    state = TrainState.create(params, tx, jax.random.key(1))
    step = jax.jit(step_lib.make_train_step(
        task.training, model, config, optim.learning_rate_schedule(config.optim, 10)))
    for _ in range(3):
      state, metrics = step(state, batch, None)
    losses[precision], states[precision] = float(metrics['loss']), state
  dtypes = {x.dtype for x in jax.tree.leaves((states['bf16'].params, states['bf16'].opt_state))
            if jnp.issubdtype(x.dtype, jnp.floating)}
  assert dtypes == {jnp.dtype(jnp.float32)}
  np.testing.assert_allclose(losses['bf16'], losses['fp32'], rtol=5e-2)
  assert losses['bf16'] != losses['fp32']             # bf16 really computed in bf16


def test_narrow_features_reach_the_model_unwidened():
  """Floats wider than the compute dtype are narrowed to it; narrower or equally wide ones (the
  float16 cached features) reach the model as they are, which widens them where it computes
  instead of copying the whole (B,T,K,P,D) array first."""
  from flax import linen as nn
  names = ('float16', 'bfloat16', 'float32')

  class Dtypes(nn.Module):
    @nn.compact
    def __call__(self, batch, train):
      return {k: jnp.asarray(names.index(str(v.dtype))) for k, v in batch.items()}

  batch = {'video': np.zeros((2, 3), np.float16), 'saliency': np.zeros((2,), np.float32)}
  seen = lambda dtype: {k: names[int(v)] for k, v in step_lib.apply_model(  # noqa: E731
      Dtypes(), {}, batch, train=False, dtype=dtype).items()}
  assert seen(jnp.float32) == {'video': 'float16', 'saliency': 'float32'}
  assert seen(jnp.bfloat16) == {'video': 'float16', 'saliency': 'bfloat16'}
