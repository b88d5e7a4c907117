"""The official CG-STVG parameter groups and schedules (`engine/optimizer.py`,
`engine/lr_scheduler.py`).

Groups by official module name: 'backbone' (vis_encoder: the ResNet convs of
`model.train_resnet_stages`, stage 0 being the stem), 'text' (text_encoder: RoBERTa and the
resizer), 'temporal' (ground_decoder.time_decoder), 'tube_span' (`model.tube_span`, not
official; scheduled as 'base'), 'base' (the rest), 'frozen' (the other
ResNet convs, officially the stem and layer1, every frozen batch norm, and RoBERTa when
`model.text.frozen`).
`config.optim.groups` gives each its learning-rate scale (the engine's `jaxvg.train.optim` reads
the same field). `make_optimizer` is the official optimiser with each group's own schedule,
which the engine's one shared schedule cannot express yet.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import traverse_util

from jaxvg.projects.cgstvg.convert import official_name

GROUPS = ('base', 'backbone', 'text', 'temporal', 'tube_span')
_RESNET_CONV = re.compile(
    r'^vis_encoder\.0\.body\.(?:layer(\d)\.\d+\.(?:conv\d|downsample\.0)|conv1)\.weight$')


def lr_scale(config: ml_collections.ConfigDict, group: str) -> float:
  return float(config.optim.groups.get(group, {}).get('lr_scale', 1.0))


def label_of(key: str, config: ml_collections.ConfigDict) -> str:
  """Parameter group of official key `key`."""
  if key.startswith('vis_encoder.'):
    conv = _RESNET_CONV.match(key)
    trains = (conv is not None and int(conv[1] or 0) in config.model.train_resnet_stages
              and lr_scale(config, 'backbone') > 0)
    return 'backbone' if trains else 'frozen'
  if key.startswith('text_encoder.'):
    frozen = key.startswith('text_encoder.body.') and config.model.text.get('frozen', False)
    return 'frozen' if frozen else 'text'
  if key.startswith('ground_decoder.time_decoder.'):
    return 'temporal'
  if key.startswith('tube_span.'):
    return 'tube_span'
  return 'base'


def param_labels(config: ml_collections.ConfigDict, params: Mapping[str, Any]) -> Any:
  """A pytree like `params` of group labels (the `Training.param_labels` of the task)."""
  flat = traverse_util.flatten_dict(dict(params))
  return traverse_util.unflatten_dict({path: label_of(official_name(path), config)
                                       for path in flat})


def trainable_count(config: ml_collections.ConfigDict, params: Mapping[str, Any]) -> int:
  """Number of trained parameters (works on `jax.eval_shape` outputs)."""
  labels = jax.tree.leaves(param_labels(config, params))
  return sum(int(x.size) for x, label in zip(jax.tree.leaves(params), labels)
             if label != 'frozen')


def lr_schedules(config: ml_collections.ConfigDict, steps_per_epoch: int
                 ) -> dict[str, Callable[[jax.Array], jax.Array]]:
  """adjust_learning_rate: 'multistep_with_warmup' drops base/backbone ×decay_factor at each
  decay epoch and gives text/temporal a linear warm-up over `warmup_fraction` of the steps then
  a linear decay to 0; 'multistep_with_warmup_all' warms every group up, then drops it."""
  o = config.optim
  total = steps_per_epoch * config.train.epochs
  warmup = round(o.warmup_fraction * total)
  drops = jnp.asarray(o.decay_epochs)

  def multistep(step):
    return o.decay_factor ** jnp.sum(drops <= step // steps_per_epoch)   # bisect_right

  def warmup_decay(step):
    return jnp.where(step < warmup, step / max(1, warmup),
                     jnp.maximum(0.0, (total - step) / max(1, total - warmup)))

  def warmup_multistep(step):
    return jnp.where(step < warmup, step / max(1, warmup), multistep(step))

  if o.schedule == 'multistep_with_warmup':
    factors = {'base': multistep, 'backbone': multistep, 'text': warmup_decay,
               'temporal': warmup_decay, 'tube_span': multistep}
  elif o.schedule == 'multistep_with_warmup_all':
    factors = dict.fromkeys(GROUPS, warmup_multistep)
  else:
    raise ValueError(f'optim.schedule: unknown schedule {o.schedule!r}')
  return {g: (lambda step, g=g: o.lr * lr_scale(config, g) * factors[g](step)) for g in GROUPS}


def make_optimizer(config: ml_collections.ConfigDict, steps_per_epoch: int,
                   params: Mapping[str, Any]) -> optax.GradientTransformation:
  """Frozen gradients zeroed (out of the clipping norm: torch never computes them) →
  clip_by_global_norm(grad_clip) → AdamW per group with its official schedule."""
  o = config.optim
  labels = param_labels(config, params)
  transforms = {g: optax.adamw(s, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay)
                for g, s in lr_schedules(config, steps_per_epoch).items()}
  transforms['frozen'] = optax.set_to_zero()
  frozen = jax.tree.map(lambda label: label == 'frozen', labels)
  return optax.chain(optax.masked(optax.set_to_zero(), frozen),
                     optax.clip_by_global_norm(o.grad_clip),
                     optax.multi_transform(transforms, labels))
