"""Official CG-STVG checkpoints (HengLan/CGSTVG state-dict layout) <-> jaxvg variables, no torch.

Flax modules carry the official names, so one rule maps every key: a top-level table for the
modules the port regroups, `name_N` -> `name.N`, compound names split at their official dots
(`attention_self_query` -> `attention.self.query`), Dense (in, out) <-> Linear (out, in), Conv
HWIO <-> OIHW, LayerNorm/Embed `scale`/`embedding` <-> `weight`; frozen batch-norm buffers are
(never-trained) parameters under their official names. A checkpoint is accepted only if every
key the config needs is present with its exact shape; official keys the port never uses are
reported as ignored.

The frozen Video-Swin-T has a loader of its own (`load_video_swin`): its parameters belong to the
task's frozen backbone, not to the trained model, and come from either the Kinetics-400 release
or the `vid.` keys of a CG-STVG checkpoint.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util

from jaxvg.convert.clip import read_torch_archive

Variables = dict[str, Any]

_TOP = {'resnet': 'vis_encoder.0.body', 'roberta': 'text_encoder.body',
        'resizer': 'text_encoder.resizer', 'encoder_norm': 'ground_encoder.encoder.norm',
        'spatial_decoder': 'ground_decoder.decoder',
        'time_norm': 'ground_decoder.time_decoder.norm'}
_TOP_INDEXED = {'spatial_layers': 'ground_encoder.encoder.spatial_layers',
                'time_layers': 'ground_decoder.time_decoder.layers',
                'pos_fc': 'ground_decoder.pos_fc'}
_SPLIT_PREFIXES = ('attention', 'self', 'output', 'hidden_intermediate', 'intermediate',
                   'embeddings', 'encoder', 'cross_attn')
_WHOLE = {'self_attn', 'cross_attn_image'}
_INDEXED = re.compile(r'^(.+)_(\d+)$')

# Official modules that are built but never called, buffers the port recomputes, the frozen
# Video-Swin (the frozen backbone's: `load_video_swin`), and the second names of shared heads.
IGNORED = tuple(re.compile(p) for p in (
    r'^ground_encoder\.encoder\.(temporal_layers\.|time_embed\.|local_pos_embed\.|frame_cls\.'
    r'|video_cls\.)',
    r'^ground_encoder\.fusion\.', r'^ground_decoder\.template_generator\.',
    r'^ground_decoder\.time_fc\.', r'^ground_decoder\.time_embed\.te$',
    r'^ground_decoder\.decoder\.(norm|norm2|fuse_linear)\.',
    r'^ground_decoder\.decoder\.layers\.\d+\.ca_qtime_proj\.',
    r'^ground_decoder\.decoder\.layers\.0\.ca2\.', r'\.ca2\.memory_intermediate\.',
    r'^text_encoder\.body\.pooler\.', r'^text_encoder\.body\.embeddings\.position_ids$',
    r'\.num_batches_tracked$', r'^vid\.',
))
ALIASES = {'ground_decoder.decoder.bbox_embed.': 'bbox_embed.',
           'ground_decoder.time_embed2.': 'action_embed.'}


def _segment(name: str) -> str:
  if name in _WHOLE:
    return name
  for prefix in _SPLIT_PREFIXES:
    if name.startswith(prefix + '_'):
      return f'{prefix}.{_segment(name[len(prefix) + 1:])}'
  match = _INDEXED.match(name)
  return f'{_segment(match[1])}.{match[2]}' if match else name


def official_name(path: tuple[str, ...]) -> str:
  """Official state-dict key of a Flax variable path (collection excluded)."""
  *modules, leaf = path
  top, rest = modules[0], modules[1:]
  match = _INDEXED.match(top)
  if top in _TOP:
    head = _TOP[top]
  elif match and match[1] in _TOP_INDEXED:
    head = f'{_TOP_INDEXED[match[1]]}.{match[2]}'
  else:
    head = top
  leaf = {'kernel': 'weight', 'scale': 'weight', 'embedding': 'weight'}.get(leaf, leaf)
  return '.'.join([head, *(_segment(m) for m in rest), leaf])


# Flax kernel axes -> torch's: Linear (in, out) -> (out, in); Conv1d (k, in, out) -> (out, in, k)
# (model.tube_span's, not official); Conv2d (kh, kw, in, out) -> (out, in, kh, kw).
_TORCH_AXES = {2: (1, 0), 3: (2, 1, 0), 4: (3, 2, 0, 1)}


def _to_official_layout(path: tuple[str, ...], value: np.ndarray) -> np.ndarray:
  if path[-1] == 'kernel':
    return value.transpose(_TORCH_AXES[value.ndim])
  return value


def _from_official_layout(path: tuple[str, ...], value: np.ndarray) -> np.ndarray:
  if path[-1] == 'kernel':
    return value.transpose(np.argsort(_TORCH_AXES[value.ndim]))
  return value


def variable_shapes(config: ml_collections.ConfigDict) -> dict[tuple[str, ...], tuple[int, ...]]:
  """(collection, *path) -> shape of every variable of the model for `config`, no allocation."""
  from jaxvg.projects.cgstvg.model import CGSTVG, dummy_batch
  shapes = jax.eval_shape(lambda: CGSTVG(config).init(jax.random.key(0), dummy_batch(config, 1)))
  return {path: tuple(v.shape) for path, v in traverse_util.flatten_dict(shapes).items()
          if path[0] == 'params'}


def official_shapes(config: ml_collections.ConfigDict) -> dict[str, tuple[int, ...]]:
  """Official key -> official shape of every tensor the port loads."""
  return {official_name(path[1:]): _to_official_layout(path, np.empty(shape, np.bool_)).shape
          for path, shape in variable_shapes(config).items()}


def to_official(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """jaxvg variables ({'params': ...}) -> official state dict (float32 numpy), shared heads
  under both of their official names."""
  out = {}
  for path, value in traverse_util.flatten_dict(dict(variables)).items():
    if path[0] == 'params':
      out[official_name(path[1:])] = np.ascontiguousarray(
          _to_official_layout(path, np.asarray(value, np.float32)))
  for alias, key in ALIASES.items():
    out.update({alias + k[len(key):]: v for k, v in list(out.items()) if k.startswith(key)})
  return out


def _take_expected(state: Mapping[str, np.ndarray], expected: Mapping[str, tuple],
                   from_layout, to_layout, errors: list[str]) -> dict[tuple[str, ...], np.ndarray]:
  """{Flax path: float32 value in the Flax layout} of every expected key (official key ->
  (path, Flax shape)); missing and mis-shaped keys are added to `errors`."""
  flat = {}
  for key, (path, shape) in sorted(expected.items()):
    if key not in state:
      errors.append(f'  missing key: {key}')
      continue
    value = from_layout(path, np.asarray(state[key], np.float32))
    if value.shape != shape:
      official = to_layout(path, np.empty(shape, np.bool_)).shape
      errors.append(f'  wrong shape: {key}: {tuple(state[key].shape)}, expected {official}')
      continue
    flat[path] = np.ascontiguousarray(value)
  return flat


def is_ignored(key: str) -> bool:
  return any(p.search(key) for p in IGNORED) or key.startswith(tuple(ALIASES))


def from_official(state: Mapping[str, np.ndarray], config: ml_collections.ConfigDict,
                  where: str = '<state dict>') -> tuple[Variables, list[str]]:
  """Official state dict -> ({'params': float32 numpy arrays}, ignored keys).

  Raises ValueError naming every missing, mis-shaped and unknown key; shared-head aliases
  must equal the head they alias."""
  expected = {official_name(path[1:]): (path, shape)
              for path, shape in variable_shapes(config).items()}
  errors, ignored = [], []
  for key in sorted(set(state) - set(expected)):
    if is_ignored(key):
      ignored.append(key)
    else:
      errors.append(f'  unexpected key: {key}')
  for alias, key in ALIASES.items():
    for name in (k for k in state if k.startswith(alias)):
      main = key + name[len(alias):]
      if main in state and not np.array_equal(state[name], state[main]):
        errors.append(f'  {name} differs from {main}, which it shares parameters with')
  flat = _take_expected(state, expected, _from_official_layout, _to_official_layout, errors)
  if errors:
    raise ValueError('\n'.join([f'{where}: checkpoint does not match the CG-STVG config']
                               + errors))
  return traverse_util.unflatten_dict(flat), ignored


def read_checkpoint(path: str | os.PathLike, use_ema: bool = True) -> dict[str, np.ndarray]:
  """The flat state dict of an official `.pth`: `model_ema` (what the official evaluates) when
  present and `use_ema`, else `model`, else the file's top level; 'module.' prefixes dropped."""
  state = read_torch_archive(path)
  for wrapper in (('model_ema.', 'model.') if use_ema else ('model.',)):
    if any(k.startswith(wrapper) for k in state):
      state = {k[len(wrapper):]: v for k, v in state.items() if k.startswith(wrapper)}
      break
  return {k.removeprefix('module.'): np.asarray(v) for k, v in state.items()}


def load_weights(path: str | os.PathLike, config: ml_collections.ConfigDict,
                 use_ema: bool = True) -> Variables:
  """Official CG-STVG checkpoint -> jaxvg variables for `config` (ignored keys dropped)."""
  variables, _ = from_official(read_checkpoint(path, use_ema), config, where=str(path))
  return jax.tree.map(jnp.asarray, variables)


# Video-Swin-T: the official wrapper's names (`VideoSwinTransformerBackbone`) <-> jaxvg's.
_SWIN_NAMES = ((re.compile(r'^layers_(\d+)_blocks_(\d+)\.'), r'layers.\1.blocks.\2.'),
               (re.compile(r'^downsamples_(\d+)\.'), r'downsamples.\1.'),
               (re.compile(r'^patch_embed_'), 'patch_embed.'),
               (re.compile(r'\.mlp_fc'), '.mlp.fc'))
# The K400 release: the backbone under `backbone.`, each stage's PatchMerging inside the stage,
# a final norm and a classifier the wrapper drops, and a temporal patch of 2 (summed to 1).
_RELEASE_DOWNSAMPLE = re.compile(r'^layers\.(\d+)\.downsample\.')
SWIN_IGNORED = tuple(re.compile(p) for p in (r'^norm\.', r'^cls_head\.',
                                             r'\.relative_position_index$'))


def swin_official_name(path: tuple[str, ...]) -> str:
  """Official wrapper key of a `VideoSwin` parameter path."""
  *modules, leaf = path
  name = '.'.join([*modules, {'kernel': 'weight', 'scale': 'weight'}.get(leaf, leaf)])
  for pattern, replacement in _SWIN_NAMES:
    name = pattern.sub(replacement, name)
  return name


def _swin_from_layout(path: tuple[str, ...], value: np.ndarray) -> np.ndarray:
  if path[-1] == 'kernel':
    return value.T if value.ndim == 2 else value.transpose(2, 3, 4, 1, 0)   # OIDHW -> DHWIO
  return value


def _swin_to_layout(path: tuple[str, ...], value: np.ndarray) -> np.ndarray:
  if path[-1] == 'kernel':
    return value.T if value.ndim == 2 else value.transpose(4, 3, 0, 1, 2)   # DHWIO -> OIDHW
  return value


def swin_wrapper_state(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The wrapper's own keys from any official form: a CG-STVG checkpoint (`vid.`), the K400
  release (`backbone.`; the official loader's renames and temporal kernel sum), or bare keys."""
  for prefix in ('state_dict.', 'model_ema.', 'model.', 'module.'):
    if any(k.startswith(prefix) for k in state):
      state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
  if any(k.startswith('vid.') for k in state):
    return {k[4:]: v for k, v in state.items() if k.startswith('vid.')}
  if any(k.startswith('backbone.') for k in state):
    out = {_RELEASE_DOWNSAMPLE.sub(r'downsamples.\1.', k[9:]): v for k, v in state.items()
           if k.startswith('backbone.')}
    if 'patch_embed.proj.weight' in out:
      out['patch_embed.proj.weight'] = out['patch_embed.proj.weight'].sum(2, keepdims=True)
    return out
  return dict(state)


def video_swin_shapes(arch) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
  """Official wrapper key -> (Flax variable path, Flax shape) of every `VideoSwin(arch)`
  parameter, no allocation."""
  from jaxvg.modules.video_swin import VideoSwin
  shapes = jax.eval_shape(lambda: VideoSwin(arch).init(jax.random.key(0),
                                                       jnp.zeros((1, 1, 32, 32, 3))))
  return {swin_official_name(path[1:]): (path, tuple(v.shape))
          for path, v in traverse_util.flatten_dict(shapes).items()}


def video_swin_official_shapes(arch) -> dict[str, tuple[int, ...]]:
  """Official wrapper key -> official shape of every parameter the port loads."""
  return {key: _swin_to_layout(path, np.empty(shape, np.bool_)).shape
          for key, (path, shape) in video_swin_shapes(arch).items()}


def video_swin_from_official(state: Mapping[str, np.ndarray], arch,
                             where: str = '<state dict>') -> tuple[Variables, list[str]]:
  """Any official Video-Swin state dict -> ({'params': ...} for `VideoSwin(arch)`, ignored keys).

  Raises ValueError naming every missing, mis-shaped and unexpected key, and any stored
  relative-position index that differs from the one the window implies."""
  from jaxvg.modules.video_swin import relative_position_index
  state = swin_wrapper_state(state)
  expected = video_swin_shapes(arch)
  errors, ignored = [], []
  index = relative_position_index(arch.window)
  for key in sorted(set(state) - set(expected)):
    if not any(p.search(key) for p in SWIN_IGNORED):
      errors.append(f'  unexpected key: {key}')
      continue
    ignored.append(key)
    if key.endswith('relative_position_index') and not np.array_equal(state[key], index):
      errors.append(f'  {key}: differs from the index of window {arch.window}')
  flat = _take_expected(state, expected, _swin_from_layout, _swin_to_layout, errors)
  if errors:
    raise ValueError('\n'.join([f'{where}: weights do not match the Video-Swin {arch}']
                               + errors))
  return traverse_util.unflatten_dict(flat), ignored


def load_video_swin(path: str | os.PathLike, arch) -> Variables:
  """Video-Swin parameters (the frozen backbone's) from the Kinetics-400 release `.pth` or an
  official CG-STVG checkpoint, without torch."""
  variables, _ = video_swin_from_official(read_torch_archive(path), arch, where=str(path))
  return jax.tree.map(jnp.asarray, variables)
