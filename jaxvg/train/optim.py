"""Optimiser and learning-rate schedule, as the official nncore engine applies them.

AdamW (PyTorch defaults) on all trainable parameters, after global-norm clipping. The schedule
is a per-iteration linear warm-up from `warmup_ratio`x and a step decay applied at epoch
boundaries (nncore `lr_updater.py`), combined as nncore combines them (`optim.warmup_mode`).
"""
from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import optax


def learning_rate_schedule(optim: ml_collections.ConfigDict, steps_per_epoch: int
                           ) -> optax.Schedule:
  """lr(step) from the step decay and the linear warm-up, combined as `optim.warmup_mode` says.

  'nncore' (the official engine, nncore 0.4.4 `LrUpdaterHook`): the decay is set at each epoch
  start, but every warm-up iteration overwrites it with base·warmup(step), and the iteration
  that ends the warm-up resets the lr to the undecayed base, which holds until the next epoch
  start applies the decay again. 'multiply': base·warmup(step)·decay(epoch) throughout. The
  two differ only where a decay epoch starts at or before the end of the warm-up (none of the
  official configs).
  """
  base = float(optim.lr)
  warmup = int(optim.warmup_steps)
  ratio = float(optim.warmup_ratio)
  decay_epochs = jnp.asarray(tuple(optim.decay_epochs) or (1 << 30,), jnp.int32)
  factor = float(optim.decay_factor)
  if optim.warmup_mode not in ('nncore', 'multiply'):
    raise ValueError("config.optim.warmup_mode must be 'nncore' or 'multiply', "
                     f'got {optim.warmup_mode!r}')

  def schedule(step):
    step = jnp.asarray(step, jnp.int32)
    warm = ratio + (1.0 - ratio) * step.astype(jnp.float32) / max(warmup, 1)
    epoch = step // steps_per_epoch
    decayed = base * factor ** jnp.sum(epoch >= decay_epochs)
    if optim.warmup_mode == 'multiply':
      return jnp.where(step < warmup, warm, 1.0) * decayed
    after_warmup = jnp.where(epoch * steps_per_epoch <= warmup, base, decayed)
    return jnp.where(step < warmup, base * warm, after_warmup)
  return schedule


def make_optimizer(optim: ml_collections.ConfigDict, steps_per_epoch: int
                   ) -> optax.GradientTransformation:
  """clip_by_global_norm(grad_clip) then AdamW with decoupled weight decay on every parameter."""
  return optax.chain(
      optax.clip_by_global_norm(float(optim.grad_clip)),
      optax.adamw(learning_rate_schedule(optim, steps_per_epoch), b1=float(optim.b1),
                  b2=float(optim.b2), eps=float(optim.eps),
                  weight_decay=float(optim.weight_decay)),
  )
