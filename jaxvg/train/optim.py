"""Optimiser and learning-rate schedule, as the official nncore engine applies them.

AdamW (PyTorch defaults) after global-norm clipping. The schedule is a per-iteration linear
warm-up from `warmup_ratio`x and a step decay applied at epoch boundaries (nncore
`lr_updater.py`), combined as `optim.warmup_mode` says. A task may label its parameters with
group names (`Training.param_labels`); `config.optim.groups[name]` then sets that group's
learning-rate multiplier (`lr_scale`) or freezes it (`frozen=True`: its gradient is zeroed
before clipping, its parameters never move).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

DEFAULT_GROUP = 'default'
FROZEN_GROUP = 'frozen'       # parameters a task labels so are never updated


def is_frozen(optim: ml_collections.ConfigDict, group: str) -> bool:
  return group == FROZEN_GROUP or bool(dict(optim.get('groups', {}) or {}).get(group, {}).get(
      'frozen', False))


def learning_rate_schedule(optim: ml_collections.ConfigDict, steps_per_epoch: int
                           ) -> optax.Schedule:
  """lr(step) from the step decay and the linear warm-up, combined as `optim.warmup_mode` says.

  'multiply' (the default): base·warmup(step)·decay(epoch) throughout. 'nncore' (R²-Tuning's
  official engine, nncore 0.4.4 `LrUpdaterHook`): the decay is set at each epoch start, but
  every warm-up iteration overwrites it with base·warmup(step), and the iteration that ends
  the warm-up resets the lr to the undecayed base, which holds until the next epoch start
  applies the decay again. The two differ only where a decay epoch starts at or before the
  end of the warm-up.
  """
  base = float(optim.lr)
  warmup = int(optim.warmup_steps)
  ratio = float(optim.warmup_ratio)
  decay_epochs = jnp.asarray(tuple(optim.decay_epochs) or (1 << 30,), jnp.int32)
  factor = float(optim.decay_factor)
  mode = optim.get('warmup_mode', 'multiply')
  if mode not in ('nncore', 'multiply'):
    raise ValueError(f"config.optim.warmup_mode must be 'nncore' or 'multiply', got {mode!r}")

  def schedule(step):
    step = jnp.asarray(step, jnp.int32)
    warm = ratio + (1.0 - ratio) * step.astype(jnp.float32) / max(warmup, 1)
    epoch = step // steps_per_epoch
    decayed = base * factor ** jnp.sum(epoch >= decay_epochs)
    if mode == 'multiply':
      return jnp.where(step < warmup, warm, 1.0) * decayed
    after_warmup = jnp.where(epoch * steps_per_epoch <= warmup, base, decayed)
    return jnp.where(step < warmup, base * warm, after_warmup)
  return schedule


def _adamw(optim: ml_collections.ConfigDict, schedule: optax.Schedule, scale: float = 1.0
           ) -> optax.GradientTransformation:
  lr = schedule if scale == 1.0 else (lambda step: scale * schedule(step))
  return optax.adamw(lr, b1=float(optim.b1), b2=float(optim.b2), eps=float(optim.eps),
                     weight_decay=float(optim.weight_decay))


def make_optimizer(optim: ml_collections.ConfigDict, steps_per_epoch: int,
                   labels: Any | None = None) -> optax.GradientTransformation:
  """clip_by_global_norm(grad_clip) then AdamW with decoupled weight decay.

  `labels` (a pytree of group names like the parameters, or None: every parameter in one group)
  selects per-group settings from `optim.groups`; unknown group names are an error.
  """
  schedule = learning_rate_schedule(optim, steps_per_epoch)
  clip = optax.clip_by_global_norm(float(optim.grad_clip))
  if labels is None:
    return optax.chain(clip, _adamw(optim, schedule))
  groups = dict(optim.get('groups', {}) or {})
  names = sorted(set(jax.tree.leaves(labels)))
  unknown = sorted(set(groups) - set(names))
  if unknown:
    raise ValueError(f'config.optim.groups names {unknown}, which are not parameter groups of '
                     f'this task; groups: {names}')
  settings = {name: dict(groups.get(name, {})) for name in names}
  frozen = {name: is_frozen(optim, name) for name in names}
  return optax.chain(
      optax.multi_transform({name: optax.set_to_zero() if frozen[name] else optax.identity()
                             for name in names}, labels),
      clip,
      optax.multi_transform({name: optax.set_to_zero() if frozen[name] else
                             _adamw(optim, schedule, float(settings[name].get('lr_scale', 1.0)))
                             for name in names}, labels))
