"""The official CG-STVG optimiser (`engine/optimizer.py`, `engine/lr_scheduler.py`): parameter
groups by official module name, each with its learning rate and schedule, AdamW, global-norm
clipping; frozen parameters (ResNet stem and layer1, stages not in `train_resnet_stages`) are
never updated.

Groups: 'backbone' (vis_encoder: ResNet), 'text' (text_encoder: RoBERTa and the resizer),
'temporal' (ground_decoder.time_decoder), 'base' (the rest), 'frozen'.
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

_RESNET_STAGE = re.compile(r'^vis_encoder\.0\.body\.layer(\d)\.')


def label_of(key: str, config: ml_collections.ConfigDict) -> str:
  """Parameter group of official key `key`."""
  if key.startswith('vis_encoder.'):
    stage = _RESNET_STAGE.match(key)
    trainable = stage is not None and int(stage[1]) in config.model.train_resnet_stages
    return 'backbone' if trainable and config.optim.backbone_lr > 0 else 'frozen'
  if key.startswith('text_encoder.'):
    return 'text'
  if key.startswith('ground_decoder.time_decoder.'):
    return 'temporal'
  return 'base'


def param_labels(params: Mapping[str, Any], config: ml_collections.ConfigDict) -> Any:
  """A pytree like `params` (the 'params' collection) of group labels."""
  flat = traverse_util.flatten_dict(dict(params))
  return traverse_util.unflatten_dict({path: label_of(official_name(path), config)
                                       for path in flat})


def trainable_count(params: Mapping[str, Any], config: ml_collections.ConfigDict) -> int:
  """Number of trained parameters (works on `jax.eval_shape` outputs)."""
  labels = jax.tree.leaves(param_labels(params, config))
  return sum(int(x.size) for x, label in zip(jax.tree.leaves(params), labels)
             if label != 'frozen')


def lr_schedules(config: ml_collections.ConfigDict, steps_per_epoch: int
                 ) -> dict[str, Callable[[jax.Array], jax.Array]]:
  """adjust_learning_rate: 'multistep_with_warmup' drops base/backbone ×0.1 at each drop epoch
  and gives text/temporal a linear warm-up over `warmup_fraction` of the steps then a linear
  decay to 0; 'multistep_with_warmup_all' warms every group up, then drops every group."""
  o = config.optim
  total = steps_per_epoch * config.train.epochs
  warmup = round(o.warmup_fraction * total)
  drops = jnp.asarray(o.drop_epochs)

  def multistep(step):
    epoch = step // steps_per_epoch
    return 0.1 ** jnp.sum(drops <= epoch)          # bisect_right(drop_epochs, epoch)

  def warmup_decay(step):
    return jnp.where(step < warmup, step / max(1, warmup),
                     jnp.maximum(0.0, (total - step) / max(1, total - warmup)))

  def warmup_multistep(step):
    return jnp.where(step < warmup, step / max(1, warmup), multistep(step))

  if o.schedule == 'multistep_with_warmup':
    factors = {'base': multistep, 'backbone': multistep, 'text': warmup_decay,
               'temporal': warmup_decay}
  elif o.schedule == 'multistep_with_warmup_all':
    factors = dict.fromkeys(('base', 'backbone', 'text', 'temporal'), warmup_multistep)
  else:
    raise ValueError(f'optim.schedule: unknown schedule {o.schedule!r}')
  base = {'base': o.lr, 'backbone': o.backbone_lr, 'text': o.text_lr, 'temporal': o.temporal_lr}
  return {g: (lambda step, g=g: base[g] * factors[g](step)) for g in base}


def make_optimizer(config: ml_collections.ConfigDict, steps_per_epoch: int,
                   params: Mapping[str, Any]) -> optax.GradientTransformation:
  """Frozen gradients zeroed (so they stay out of the norm, as torch never computes them) →
  clip_by_global_norm(max_grad_norm) → AdamW per group."""
  o = config.optim
  labels = param_labels(params, config)
  schedules = lr_schedules(config, steps_per_epoch)
  transforms = {g: optax.adamw(s, weight_decay=o.weight_decay) for g, s in schedules.items()}
  transforms['frozen'] = optax.set_to_zero()
  frozen = jax.tree.map(lambda label: label == 'frozen', labels)
  return optax.chain(optax.masked(optax.set_to_zero(), frozen),
                     optax.clip_by_global_norm(o.max_grad_norm),
                     optax.multi_transform(transforms, labels))

