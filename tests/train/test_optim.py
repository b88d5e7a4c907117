"""The learning-rate schedule equals the official nncore formula at chosen steps."""
import numpy as np
import optax
import pytest

from jaxvg.projects.r2tuning import config as r2_config
from jaxvg.train import optim


def official_lr(step: int, base: float, warmup: int, ratio: float, steps_per_epoch: int,
                decay_epochs: tuple[int, ...], factor: float) -> float:
  """nncore: regular lr = base · factor^#(decay epochs reached, 0-indexed epoch of this iter);
  during warm-up (iter < warmup) lr = regular · (ratio + (1 - ratio) · iter / warmup)."""
  epoch = step // steps_per_epoch
  regular = base * factor ** sum(epoch >= e for e in decay_epochs)
  if step < warmup:
    return regular * (ratio + (1 - ratio) * step / warmup)
  return regular


@pytest.mark.parametrize('step', [0, 1, 250, 499, 500, 501, 4519, 4520, 4521, 9000])
def test_qvhighlights_schedule_matches_official(step):
  config = r2_config.base()
  schedule = optim.learning_rate_schedule(config.optim, steps_per_epoch=226)
  expected = official_lr(step, 5e-4, 500, 1e-3, 226, (20,), 0.1)
  np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-6)


def test_constant_schedule_after_short_warmup():
  config = r2_config.highlight('tvsum', 'BK', ('BK',), epochs=500)
  schedule = optim.learning_rate_schedule(config.optim, steps_per_epoch=10)
  np.testing.assert_allclose(float(schedule(0)), 5e-4 * 1e-3, rtol=1e-6)
  np.testing.assert_allclose(float(schedule(25)), 5e-4 * (1e-3 + 0.999 * 0.5), rtol=1e-6)
  for step in (50, 51, 4999):
    np.testing.assert_allclose(float(schedule(step)), 5e-4, rtol=1e-6)


def test_adamw_matches_pytorch_formula():
  """One AdamW step after clipping equals the PyTorch update written out by hand."""
  config = r2_config.base()
  config.optim.warmup_steps = 0
  config.optim.grad_clip = 1.0
  tx = optim.make_optimizer(config.optim, steps_per_epoch=100)
  params = {'w': np.array([1.0, -2.0, 3.0], np.float32)}
  grads = {'w': np.array([3.0, 4.0, 0.0], np.float32)}       # norm 5 -> clipped to norm 1
  updates, _ = tx.update(grads, tx.init(params), params)
  new = optax.apply_updates(params, updates)['w']
  g = grads['w'] / 5.0
  lr, wd, eps = 5e-4, 1e-4, 1e-8
  m, v = 0.1 * g / (1 - 0.9), 0.001 * g * g / (1 - 0.999)
  expected = params['w'] * (1 - lr * wd) - lr * m / (np.sqrt(v) + eps)
  np.testing.assert_allclose(np.asarray(new), expected, rtol=1e-6, atol=1e-7)
