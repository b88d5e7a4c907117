"""NST (and its LoRA / full fine-tuning foils) on chosen frozen Dense / 1×1 conv layers of any
linen model, without editing the model.

`Tuned(base, nst)` calls `base` under `nn.intercept_methods`: when a chosen layer (by module path
relative to the base) is called, its input x becomes x + Δ(x) (NST) or its output gains a LoRA
term. The residual is layer-local: only that call sees it.

A point is exact for the whole model only if the layer is the sole consumer of its input (the
skip-path caveat): NST's residual is defined on an input *feature*, and a
feature that also feeds a skip path either carries a null-space residual into the skip (the
frozen model's HQ output changes) or, injected layer-locally as here, leaves the skip's degraded
feature unrestored. A model therefore declares, per frozen layer, whether its input is
'exclusive' or 'shared', in a class attribute

    NST_INPUTS: ClassVar[Mapping[str, str]] = {r'encoder/layers_\\d+/linear2': 'exclusive',
                                                r'backbone/.*/conv1': 'shared'}

(module-path regexes, first match wins; `NSTConfig.declared_inputs` adds declarations for models
that have none). NST refuses undeclared and shared points unless `allow_shared_inputs`, which
flags them instead.

Variables: {'params': {'base': frozen base, '<unit>_<point>': trainable units},
'nullspace': {'residual_<point>': basis entry}} — the bases never enter an optimiser.
"""
from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from jaxvg.modules import nullspace
from jaxvg.projects.nst.config import NSTConfig, PointSpec
from jaxvg.projects.nst.units import (QUALITY_COLLECTION, DualSpaceResidual, LoRA,
                                      QualityAdaptiveUnit)

EXCLUSIVE, SHARED = 'exclusive', 'shared'
TRAINABLE, FROZEN = 'trainable', 'frozen'


class InjectionPointError(ValueError):
  """A point NST cannot use exactly (undeclared, shared with a skip path, or not a Dense / 1×1
  conv)."""


@dataclasses.dataclass(frozen=True)
class ResolvedPoint:
  spec: PointSpec
  unit: str       # the point's key among the wrapper's units (the path, '/' → '.')
  consumers: str  # EXCLUSIVE or SHARED, as declared
  flagged: bool   # a shared input accepted by `allow_shared_inputs`


def resolve_points(base: nn.Module, nst: NSTConfig) -> list[ResolvedPoint]:
  """Checks every point against the declarations; raises InjectionPointError for NST on an
  undeclared point or (unless allowed) a shared one. LoRA and full fine-tuning change only the
  layer's own output and need no declaration."""
  declarations = [*nst.declared_inputs, *getattr(type(base), 'NST_INPUTS', {}).items()]
  for _, kind in declarations:
    if kind not in (EXCLUSIVE, SHARED):
      raise InjectionPointError(
          f'declared input kind must be {EXCLUSIVE!r} or {SHARED!r}, got {kind!r}')
  resolved = []
  for spec in nst.points:
    kind = next((kind for pattern, kind in declarations if re.fullmatch(pattern, spec.path)), None)
    flagged = False
    if nst.method == 'nst':
      if kind is None:
        raise InjectionPointError(
            f'{type(base).__name__} does not declare whether the input of {spec.path!r} feeds '
            'anything else; declare it in NST_INPUTS or NSTConfig.declared_inputs')
      if kind == SHARED:
        if not nst.allow_shared_inputs:
          raise InjectionPointError(
              f'the input of {spec.path!r} also feeds a skip path: a null-space residual there '
              'either changes the frozen model through the skip or leaves the skip unrestored; '
              'set allow_shared_inputs to inject layer-locally anyway')
        flagged = True
        warnings.warn(f'NST point {spec.path!r} has a shared input; injected layer-locally',
                      stacklevel=2)
    resolved.append(ResolvedPoint(spec, spec.path.replace('/', '.'), kind or 'undeclared', flagged))
  if len({point.spec.path for point in resolved}) != len(resolved):
    raise InjectionPointError(f'a point is listed twice: {[p.path for p in nst.points]}')
  return resolved


class Tuned(nn.Module):
  """The frozen `base` with NST / LoRA units at `nst.points`; call it as the base is called.

  Call keywords of its own: `quality` (NST only) replaces every QAU's score, e.g. 0.0 for the
  guarantee check; `train_units` selects the soft (train) or hard-gated (eval) quality, and
  defaults to the base's own `train` keyword when the base takes one; `bases` ({unit: basis
  entry}, as `attach_nullspace` stores them under 'residual_<unit>') gives the null-space bases
  by argument instead of the 'nullspace' collection (an engine that applies 'params' only);
  `return_quality` returns (outputs, {unit: QAU logit}) instead of the outputs.
  """
  base: nn.Module
  nst: NSTConfig

  def setup(self):
    points = resolve_points(self.base, self.nst)
    self.targets = {point.spec.path: point for point in points}
    if self.nst.method == 'nst':
      self.quality = {p.unit: QualityAdaptiveUnit(self.nst.quality_hidden, p.spec.pool_axes,
                                                  self.nst.quality_init_bias) for p in points}
      self.residual = {p.unit: DualSpaceResidual(self.nst.generator_hidden,
                                                 self.nst.shared_generator,
                                                 self.nst.null_generator) for p in points}
    elif self.nst.method == 'lora':
      self.lora = {p.unit: LoRA(self.nst.lora_rank, self.nst.lora_alpha) for p in points}

  def __call__(self, *args, quality: float | jax.Array | None = None,
               train_units: bool | None = None, bases: Mapping | None = None,
               return_quality: bool = False, **kwargs) -> Any:
    if self.nst.method in ('frozen', 'full'):
      outputs = self.base(*args, **kwargs)
      return (outputs, {}) if return_quality else outputs
    train = bool(kwargs.get('train', False)) if train_units is None else train_units
    logits = {}

    def interceptor(next_fun, call_args, call_kwargs, context):
      module = context.module
      point = (self.targets.get('/'.join(module.path[1:]))
               if context.method_name == '__call__' and module.path[:1] == ('base',) else None)
      if point is None:
        return next_fun(*call_args, **call_kwargs)
      if not call_args:
        raise InjectionPointError(f'{point.spec.path!r} must be called with its input positionally')
      x, rest = call_args[0], call_args[1:]
      _check_layer(module, x, point.spec.path)
      if self.nst.method == 'lora':
        y = next_fun(x, *rest, **call_kwargs)
        return y + self.lora[point.unit](x, y.shape[-1]).astype(y.dtype)
      logits[point.unit] = self.quality[point.unit](x)
      q = self._gate(logits[point.unit], quality, train)
      basis = None if bases is None else bases[f'residual_{point.unit}']
      delta = self.residual[point.unit](x, q, basis)
      return next_fun((x + delta).astype(x.dtype), *rest, **call_kwargs)

    with nn.intercept_methods(interceptor):
      outputs = self.base(*args, **kwargs)
    return (outputs, logits) if return_quality else outputs

  def _gate(self, logit: jax.Array, override, train: bool) -> jax.Array:
    q = nn.sigmoid(logit)
    if override is not None:
      return jnp.broadcast_to(jnp.asarray(override, jnp.float32), q.shape)
    if not train and self.nst.quality_hard_gate is not None:
      return (q > self.nst.quality_hard_gate).astype(q.dtype)
    return q


def _check_layer(module: nn.Module, x: jax.Array, path: str) -> None:
  """The layer must be a Dense / 1×1 conv over x's last axis (checked once its kernel exists)."""
  if not module.has_variable('params', 'kernel'):
    if module.is_initializing():
      return
    raise InjectionPointError(f'{path!r} ({type(module).__name__}) has no kernel parameter')
  shape = module.get_variable('params', 'kernel').shape
  if len(shape) < 2 or any(size != 1 for size in shape[:-2]) or shape[-2] != x.shape[-1]:
    raise InjectionPointError(f'{path!r} is not a Dense / 1x1 conv over the last axis of its '
                              f'input: kernel {shape}, input {x.shape}')


def _base_kernel(params: Mapping, path: str) -> jax.Array:
  node = params['base']
  for name in path.split('/'):
    if name not in node:
      raise InjectionPointError(f'no module {path!r} in the base parameters')
    node = node[name]
  return node['kernel']


def attach_nullspace(variables: Mapping, base: nn.Module, nst: NSTConfig
                     ) -> tuple[dict, list[str]]:
  """`variables` with the 'nullspace' collection for NST's points, recomputing (SVD) only the
  bases whose frozen kernel changed since the entries already in `variables`, and without the
  QAU logits an `init` sowed. Returns (new variables, points recomputed)."""
  variables = flax.core.unfreeze(variables)
  variables.pop(QUALITY_COLLECTION, None)
  if nst.method != 'nst':
    return variables, []
  points = resolve_points(base, nst)
  previous = variables.get(nullspace.COLLECTION, {})
  kernels = {f'residual_{p.unit}': _base_kernel(variables['params'], p.spec.path) for p in points}
  entries, recomputed = nullspace.refresh(kernels, previous, rank_rule=nst.rank_rule,
                                          energy=nst.energy)
  variables[nullspace.COLLECTION] = {name: {k: jnp.asarray(v) for k, v in entry.items()}
                                     for name, entry in entries.items()}
  return variables, [name.removeprefix('residual_').replace('.', '/') for name in recomputed]


def describe(variables: Mapping, base: nn.Module, nst: NSTConfig) -> list[str]:
  """One line per point (layer, kernel shape, null-space dimension), then the trainable count."""
  lines = []
  for point in resolve_points(base, nst):
    kernel = _base_kernel(variables['params'], point.spec.path)
    line = f'{point.spec.path}: kernel {tuple(kernel.shape)}, input {point.consumers}'
    entry = variables.get(nullspace.COLLECTION, {}).get(f'residual_{point.unit}')
    if entry is not None:
      line += f', null-space dim {nullspace.null_dimension(entry)}'
    lines.append(line + (' [flagged: shared input]' if point.flagged else ''))
  labels = trainable_labels(variables['params'], nst)
  count = sum(leaf.size for leaf, label in zip(jax.tree.leaves(variables['params']),
                                               jax.tree.leaves(labels)) if label == TRAINABLE)
  lines.append(f'trainable parameters ({nst.method}): {count:,}')
  return lines


def trainable_labels(params: Mapping, nst: NSTConfig) -> Any:
  """TRAINABLE / FROZEN per parameter leaf: NST and LoRA train only their units, 'full' the
  points' own parameters, 'frozen' nothing."""
  paths = {point.path for point in nst.points}

  def label(key_path, _):
    names = [getattr(key, 'key', str(key)) for key in key_path]
    if names[0] != 'base':
      return TRAINABLE if nst.method in ('nst', 'lora') else FROZEN
    module = '/'.join(names[1:-1])
    return TRAINABLE if nst.method == 'full' and module in paths else FROZEN
  return jax.tree_util.tree_map_with_path(label, flax.core.unfreeze(params))


def optimizer(tx: optax.GradientTransformation, params: Mapping, nst: NSTConfig
              ) -> optax.GradientTransformation:
  """`tx` on the trainable leaves; frozen leaves get zero updates (and no optimiser state)."""
  return optax.multi_transform({TRAINABLE: tx, FROZEN: optax.set_to_zero()},
                               trainable_labels(params, nst))


def frozen_base(base_cls: type[nn.Module], nst: NSTConfig) -> type[nn.Module]:
  """`base_cls` reading its parameters through stop_gradient (except the layers 'full'
  fine-tunes), for an engine that differentiates every parameter it is given: no gradient is
  even computed for a frozen weight. Module paths, parameters and `NST_INPUTS` are unchanged."""
  trainable = {point.path for point in nst.points} if nst.method == 'full' else set()

  def stop(tree):
    def leaf(key_path, x):  # key_path: ('params', *module path, parameter name)
      module = '/'.join(str(getattr(key, 'key', key)) for key in key_path[1:-1])
      return x if module in trainable else jax.lax.stop_gradient(x)
    return jax.tree_util.tree_map_with_path(leaf, tree)
  return nn.map_variables(base_cls, 'params', trans_in_fn=stop, init=True)


def freeze(params: Mapping, labels: Any) -> Any:
  """stop_gradient on the frozen leaves, so no gradient is even computed through them."""
  return jax.tree.map(
      lambda leaf, label: leaf if label == TRAINABLE else jax.lax.stop_gradient(leaf),
      flax.core.unfreeze(params), labels)
