"""Official R²-Tuning checkpoints (yeliudev/R2-Tuning state-dict layout) <-> jaxvg params.

The key list and shapes are derived from the jaxvg model itself (jax.eval_shape for the config),
with one naming rule per module, so a checkpoint is accepted only if every official key is present
with exactly the expected shape. Linear (out, in) <-> Dense (in, out); Conv1d (out, in, k) <->
Conv (k, in, out); LayerNorm weight <-> scale.
"""
from __future__ import annotations

import os
import pathlib
import re
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util

from jaxvg.convert.clip import read_torch_archive
from jaxvg.errors import UserError

# Official modules with no jaxvg parameter: the SampledNCE logit-scale buffer (a constant 1/0.07
# here) and, for checkpoints trained with init=True, the frozen CLIP (loaded separately).
_IGNORED_PREFIXES = ('loss.', 'clip.')
_MAP_LAYERS = {'norm0': '0', 'fc0': '2', 'norm1': '4', 'fc1': '6'}     # video_map / query_map
_HEAD_LAYERS = {'conv0': '1', 'conv1': '3'}                            # ConvHead Sequential
_FFN_LAYERS = {'fc0': 'mapping.0', 'fc1': 'mapping.2'}
_PYRAMID = re.compile(r'^level(\d+)_(conv|norm)(\d+)$')


def _official_module(path: tuple[str, ...]) -> str:
  """Dotted official module name of a Flax module path (without the leaf)."""
  top, rest = path[0], list(path[1:])
  if top == 'adapter':
    if rest and rest[0] == 'step':
      rest = rest[1:]
      if rest[0] in ('video_map', 'query_map'):
        rest[1] = _MAP_LAYERS[rest[1]]
      elif rest[0] == 'tem' and rest[1] == 'ffn':
        rest[2] = _FFN_LAYERS[rest[2]]
    return '.'.join(['adapter'] + rest)
  if top == 'pyramid':
    level, kind, j = _PYRAMID.match(rest[0]).groups()
    index = 5 * int(j) + (1 if kind == 'conv' else 3)   # [Permute, Conv, Permute, LN, ReLU] × j
    return f'pyramid.blocks.{level}.{index}'
  if top in ('class_head', 'coord_head'):
    return f'{top}.module.{_HEAD_LAYERS[rest[0]]}'
  return '.'.join(path)


def _official_name(path: tuple[str, ...]) -> str:
  """Official state-dict key (without 'module.') of a Flax param path."""
  *module, leaf = path
  if path in (('coef',), ('adapter', 'gate'), ('adapter', 'scale')):   # raw nn.Parameters
    return '.'.join(path)
  leaf = {'kernel': 'weight', 'scale': 'weight', 'bias': 'bias'}[leaf]
  return f'{_official_module(tuple(module))}.{leaf}'


def _swap_layout(path: tuple[str, ...], value: np.ndarray) -> np.ndarray:
  """Linear (out, in) <-> Dense (in, out), Conv1d (out, in, k) <-> Conv (k, in, out); both ways
  are the same axis reversal."""
  return np.transpose(value) if path[-1] == 'kernel' else value


def param_shapes(model_config: ml_collections.ConfigDict) -> dict[tuple[str, ...], tuple[int, ...]]:
  """Flax param path -> shape for `model_config`, without computing anything."""
  from jaxvg.projects.r2tuning.model import R2Tuning
  c = model_config
  t = max(c.strides)
  batch = dict(video=jnp.zeros((1, t, c.num_layers, c.num_tokens, c.video_dims)),
               video_mask=jnp.ones((1, t), bool),
               query=jnp.zeros((1, 1, c.num_layers, c.query_dims)),
               query_mask=jnp.ones((1, 1), bool))
  shapes = jax.eval_shape(lambda: R2Tuning(c).init({'params': jax.random.key(0)}, batch))
  flat = traverse_util.flatten_dict(shapes['params'])
  return {path: tuple(x.shape) for path, x in flat.items()}


def official_shapes(model_config: ml_collections.ConfigDict) -> dict[str, tuple[int, ...]]:
  """Official key (with 'module.') -> official shape, for `model_config`."""
  out = {}
  for path, shape in param_shapes(model_config).items():
    official = _swap_layout(path, np.empty(shape, np.float32)).shape
    out[f'module.{_official_name(path)}'] = official
  return out


def _flatten_nested(obj: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  out = {}
  for key, value in obj.items():
    if isinstance(value, Mapping):
      out.update(_flatten_nested(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = value
  return out


def read_checkpoint(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, np.ndarray]:
  """Flat official state dict (no 'module.' prefix, no wrapper) from a .pth/.pt/.ckpt (torch zip),
  .npz, .safetensors file or an in-memory (possibly nested / wrapped) dict of arrays."""
  if isinstance(source, Mapping):
    state = _flatten_nested(source)
  else:
    path = pathlib.Path(source)
    if not path.exists():
      raise FileNotFoundError(f'{path}: no such R²-Tuning checkpoint')
    if path.suffix == '.npz':
      with np.load(path) as f:
        state = dict(f)
    elif path.suffix == '.safetensors':
      from safetensors.numpy import load_file
      state = load_file(str(path))
    else:
      state = read_torch_archive(path)
  for wrapper in ('state_dict.', 'model.'):
    if any(k.startswith(wrapper) for k in state):
      state = {k[len(wrapper):]: v for k, v in state.items() if k.startswith(wrapper)}
      break
  return {k[len('module.'):] if k.startswith('module.') else k: np.asarray(v)
          for k, v in state.items()}


def load_official(source: str | os.PathLike | Mapping[str, Any],
                  config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Official checkpoint -> jaxvg params (nested dict of float32 numpy arrays) for `config`
  (a full config or its `model` part). Raises ValueError naming every missing, unexpected and
  mis-shaped key."""
  model_config = config.model if 'model' in config else config
  where = source if not isinstance(source, Mapping) else '<state dict>'
  state = read_checkpoint(source)
  expected = {_official_name(path): (path, shape)
              for path, shape in param_shapes(model_config).items()}
  given = {k: v for k, v in state.items() if not k.startswith(_IGNORED_PREFIXES)}
  missing = sorted(set(expected) - set(given))
  unexpected = sorted(set(given) - set(expected))
  misshaped = []
  flat = {}
  for name, (path, shape) in expected.items():
    if name not in given:
      continue
    value = _swap_layout(path, given[name].astype(np.float32))
    if value.shape != shape:
      official = _swap_layout(path, np.empty(shape, np.float32)).shape
      misshaped.append(f'{name}: {given[name].shape}, expected {official}')
      continue
    flat[path] = np.ascontiguousarray(value)
  if missing or unexpected or misshaped:
    lines = [f'{where}: checkpoint does not match the R²-Tuning config']
    lines += [f'  missing key: {k}' for k in missing]
    lines += [f'  unexpected key: {k}' for k in unexpected]
    lines += [f'  wrong shape: {m}' for m in misshaped]
    raise UserError('\n'.join(lines))
  return traverse_util.unflatten_dict(flat)


def to_official(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """jaxvg params -> official state dict (keys with 'module.', official layouts, float32)."""
  params = params.get('params', params)
  flat = traverse_util.flatten_dict(dict(params))
  return {f'module.{_official_name(path)}':
          np.ascontiguousarray(_swap_layout(path, np.asarray(v, np.float32)))
          for path, v in flat.items()}
