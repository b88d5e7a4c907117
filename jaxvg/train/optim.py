"""Optimiser and learning-rate schedule, as the official nncore engine applies them.

AdamW (PyTorch defaults) on all trainable parameters, after global-norm clipping. The schedule
is a per-iteration linear warm-up from `warmup_ratio`x, times a step decay applied at epoch
boundaries (nncore `lr_updater.py`).
"""
from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import optax


def learning_rate_schedule(optim: ml_collections.ConfigDict, steps_per_epoch: int
                           ) -> optax.Schedule:
  """lr(step) = lr · warmup(step) · decay_factor^(#decay epochs reached)."""
  base = float(optim.lr)
  warmup = int(optim.warmup_steps)
  ratio = float(optim.warmup_ratio)
  decay_epochs = jnp.asarray(tuple(optim.decay_epochs) or (1 << 30,), jnp.int32)
  factor = float(optim.decay_factor)

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    warm = jnp.where(step < warmup, ratio + (1.0 - ratio) * step / max(warmup, 1), 1.0)
    epoch = jnp.floor(step / steps_per_epoch).astype(jnp.int32)
    decays = jnp.sum(epoch >= decay_epochs)
    return base * warm * factor ** decays
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
