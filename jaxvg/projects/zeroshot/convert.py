"""Hugging Face LLaVA folders (safetensors, no torch) -> jaxvg `Llava` config and params.

Accepts the three key styles in circulation and maps them onto the llava-hf one (style A):
  A  llava-hf Hub files: `vision_tower.vision_model.*`, `multi_modal_projector.linear_{1,2}`,
     `image_newline`, `language_model.model.*`, `language_model.lm_head.weight`;
  B  newer transformers: `model.vision_tower.*`, `model.multi_modal_projector.*`,
     `model.language_model.*`, `lm_head.weight` (towers also without the `vision_model.` level);
  C  original lmms-lab (LLaVA-NeXT): `model.vision_tower.vision_tower.vision_model.*`,
     `model.mm_projector.{0,2}.*`, `model.{embed_tokens,layers,norm}.*`, `lm_head.weight`.
The expected parameter tree comes from the model itself (`jax.eval_shape`), so every missing or
mis-shaped tensor is named before anything is returned.
"""
from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from safetensors.numpy import load_file

from jaxvg.modules.llm import DecoderConfig
from jaxvg.modules.vit import ViTConfig
from jaxvg.projects.zeroshot.llava import Llava, LlavaConfig


class CheckpointError(ValueError):
  """A checkpoint folder that does not match the model it should load into."""


# Style B / C -> style A, first matching rule wins.
_KEY_RULES = [
    (r'^model\.vision_tower\.vision_tower\.', 'vision_tower.'),  # C
    (r'^model\.mm_projector\.0\.', 'multi_modal_projector.linear_1.'),  # C
    (r'^model\.mm_projector\.2\.', 'multi_modal_projector.linear_2.'),  # C
    (r'^model\.(embed_tokens|layers|norm)\.', r'language_model.model.\1.'),  # C
    (r'^model\.vision_tower\.', 'vision_tower.'),  # B
    (r'^model\.multi_modal_projector\.', 'multi_modal_projector.'),  # B
    (r'^model\.language_model\.', 'language_model.model.'),  # B
    (r'^model\.image_newline$', 'image_newline'),  # B, C
    (r'^lm_head\.', 'language_model.lm_head.'),  # B, C
]


def canonical_key(key: str) -> str:
  """Any supported style -> the llava-hf name (towers always with the `vision_model.` level)."""
  for pattern, repl in _KEY_RULES:
    if re.match(pattern, key):
      key = re.sub(pattern, repl, key)
      break
  if key.startswith('vision_tower.') and not key.startswith('vision_tower.vision_model.'):
    key = 'vision_tower.vision_model.' + key[len('vision_tower.'):]
  return key


def read_safetensors_folder(folder: str | pathlib.Path) -> dict[str, np.ndarray]:
  """All tensors of a folder: the shards named by `model.safetensors.index.json`, else every
  `*.safetensors` file; keys mapped to the llava-hf style."""
  folder = pathlib.Path(folder)
  index = folder / 'model.safetensors.index.json'
  if index.exists():
    files = sorted(set(json.loads(index.read_text())['weight_map'].values()))
  else:
    files = sorted(p.name for p in folder.glob('*.safetensors'))
  if not files:
    raise CheckpointError(f'{folder}: no *.safetensors files (and no model.safetensors.index.json)')
  tensors = {}
  for name in files:
    path = folder / name
    if not path.exists():
      raise CheckpointError(f'{index}: names shard {name}, which is missing')
    for key, value in load_file(path).items():
      tensors[canonical_key(key)] = value
  return tensors


# Towers of the original (style C) configs, which name the tower instead of describing it.
KNOWN_TOWERS = {
    'siglip-so400m-patch14-384': ViTConfig.siglip(
        image_size=384, patch_size=14, hidden_size=1152, intermediate_size=4304, num_layers=26,
        num_heads=16),
    'clip-vit-large-patch14-336': ViTConfig.clip(
        image_size=336, patch_size=14, hidden_size=1024, intermediate_size=4096, num_layers=24,
        num_heads=16),
}


def _decoder_config(t: dict[str, Any], tie_default: bool) -> DecoderConfig:
  scaling = t.get('rope_scaling') or t.get('rope_parameters') or {}
  kind = scaling.get('type', scaling.get('rope_type'))
  linear = scaling.get('factor', 1.0) if kind == 'linear' else 1.0
  qwen = 'qwen' in t.get('model_type', '') or any('Qwen' in a for a in t.get('architectures') or [])
  return DecoderConfig(
      vocab_size=t['vocab_size'], hidden_size=t['hidden_size'],
      intermediate_size=t['intermediate_size'], num_layers=t['num_hidden_layers'],
      num_heads=t['num_attention_heads'],
      num_kv_heads=t.get('num_key_value_heads') or t['num_attention_heads'],
      head_dim=t.get('head_dim'), rope_theta=t.get('rope_theta', 10000.0),
      rope_linear_scale=linear, rms_norm_eps=t.get('rms_norm_eps', 1e-6),
      qkv_bias=qwen or t.get('attention_bias', False),
      tie_word_embeddings=t.get('tie_word_embeddings', tie_default))


def _vit_config(v: dict[str, Any]) -> ViTConfig:
  make = ViTConfig.clip if v.get('model_type', '').startswith('clip') else ViTConfig.siglip
  return make(image_size=v['image_size'], patch_size=v['patch_size'], hidden_size=v['hidden_size'],
              intermediate_size=v['intermediate_size'], num_layers=v['num_hidden_layers'],
              num_heads=v['num_attention_heads'],
              hidden_act=v.get('hidden_act', 'gelu_pytorch_tanh'),
              layer_norm_eps=v.get('layer_norm_eps', 1e-6))


def config_from_hf(cfg: dict[str, Any], **overrides) -> LlavaConfig:
  """A `config.json` (llava_onevision, llava_next_video, or an original LLaVA-NeXT one) ->
  LlavaConfig; `overrides` set the STVG fork's knobs (pool stride/mode/order, newline)."""
  model_type = cfg.get('model_type', '')
  if 'vision_config' in cfg:  # transformers layout
    vision, text = _vit_config(cfg['vision_config']), cfg['text_config']
    decoder = _decoder_config(text, tie_default=cfg.get('tie_word_embeddings', False))
    if model_type == 'llava_onevision':
      arch = dict(pool_mode='bilinear', pool_stride=2, pool_before_projector=False, newline=True)
    elif model_type == 'llava_next_video':
      arch = dict(pool_mode=cfg.get('spatial_pool_mode', 'average'),
                  pool_stride=cfg.get('spatial_pool_stride', 2), pool_before_projector=True,
                  newline=False)
    else:
      raise CheckpointError(f'unsupported model_type {model_type!r}')
    arch.update(vision_feature_layer=cfg.get('vision_feature_layer', -2),
                drop_class_token=cfg.get('vision_feature_select_strategy', 'default') == 'default',
                projector_act=cfg.get('projector_hidden_act', 'gelu'))
  else:  # original LLaVA-NeXT: names the tower, describes the LM at the top level
    tower = next((v for k, v in KNOWN_TOWERS.items() if k in cfg.get('mm_vision_tower', '')), None)
    if tower is None:
      raise CheckpointError(f"unknown mm_vision_tower {cfg.get('mm_vision_tower')!r}; "
                            f'known: {sorted(KNOWN_TOWERS)}')
    vision, decoder = tower, _decoder_config(cfg, tie_default=False)
    arch = dict(pool_mode=cfg.get('mm_spatial_pool_mode', 'bilinear'),
                pool_stride=cfg.get('mm_spatial_pool_stride', 2), pool_before_projector=False,
                newline=cfg.get('mm_newline_position', 'one_token') == 'one_token',
                # LLaVA-NeXT's SigLIP tower drops its last block and reads hidden_states[-1]
                # whatever mm_vision_select_layer says; its CLIP tower honours the setting.
                vision_feature_layer=(cfg.get('mm_vision_select_layer', -2) if tower.class_token
                                      else -1),
                drop_class_token=tower.class_token, projector_act='gelu')
  arch.update(overrides)
  return LlavaConfig(vision=vision, decoder=decoder, **arch)


def _hf_name(path: tuple[str, ...]) -> tuple[str, str]:
  """jaxvg param path -> (llava-hf key, transform: 'dense' / 'conv' transposes, or 'copy')."""
  *mods, leaf = path
  if not mods:  # image_newline
    return leaf, 'copy'
  kind = ('conv' if mods[-1] == 'patch_embedding' else 'dense') if leaf == 'kernel' else 'copy'
  hf_leaf = {'kernel': 'weight', 'scale': 'weight', 'embedding': 'weight'}.get(leaf, leaf)
  names = [re.sub(r'^layers_(\d+)$', r'layers.\1', m) for m in mods[1:]]
  if mods[0] == 'vision_tower':
    if not names:  # the tower's own params
      suffix = '.weight' if leaf == 'position_embedding' else ''
      return f'vision_tower.vision_model.embeddings.{leaf}{suffix}', 'copy'
    if names[0] == 'patch_embedding':
      names = ['embeddings'] + names
    elif names[0].startswith('layers.'):
      names = ['encoder'] + [('mlp.' + n if n in ('fc1', 'fc2') else n) for n in names]
    return '.'.join(['vision_tower.vision_model', *names, hf_leaf]), kind
  if mods[0] == 'language_model':
    if names == ['lm_head']:
      return 'language_model.lm_head.weight', kind
    return '.'.join(['language_model.model', *names, hf_leaf]), kind
  return '.'.join([*mods, hf_leaf]), kind


_TRANSFORMS = {'dense': lambda a: a.T, 'conv': lambda a: a.transpose(2, 3, 1, 0),
               'copy': lambda a: a}


def _param_paths(tree) -> list[tuple[tuple[str, ...], Any]]:
  return [(tuple(k.key for k in p), v) for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]]


def params_from_tensors(tensors: dict[str, np.ndarray], config: LlavaConfig,
                        dtype=jnp.float32) -> dict[str, Any]:
  """Llava params from llava-hf-named tensors; raises CheckpointError naming every missing or
  mis-shaped key. Unused tensors (the dropped tower layers, post_layernorm) are ignored."""
  shapes = jax.eval_shape(lambda: init_params(config))
  problems, out = [], {}
  for names, spec in _param_paths(shapes):
    key, kind = _hf_name(names)
    if key not in tensors:
      problems.append(f'missing {key} (for {"/".join(names)} {tuple(spec.shape)})')
      continue
    value = _TRANSFORMS[kind](tensors[key])
    if value.shape != tuple(spec.shape):
      problems.append(f'{key}: shape {tensors[key].shape} does not give {"/".join(names)} '
                      f'{tuple(spec.shape)}')
      continue
    out[names] = jnp.asarray(value, dtype)
  if problems:
    raise CheckpointError('checkpoint does not match the model:\n  ' + '\n  '.join(problems))
  return jax.tree_util.tree_map_with_path(lambda p, _: out[tuple(k.key for k in p)], shapes)


def init_params(config: LlavaConfig, seed: int = 0) -> dict[str, Any]:
  """Random params of the right tree (tests, eval_shape for loading)."""
  model = Llava(config)
  g, frames = config.vision.image_size, 1
  ids = jnp.zeros((1, config.num_visual_tokens(frames) + 1), jnp.int32)
  return model.init(jax.random.key(seed), jnp.zeros((frames, g, g, 3)), ids, 0,
                    jnp.zeros((1, 1), jnp.int32))['params']


def load_weights(folder: str | pathlib.Path, dtype=jnp.float32,
                 **overrides) -> tuple[LlavaConfig, dict[str, Any]]:
  """(config, params) of a Hugging Face LLaVA folder (config.json + safetensors)."""
  folder = pathlib.Path(folder)
  config_path = folder / 'config.json'
  if not config_path.exists():
    raise CheckpointError(f'{folder}: no config.json')
  config = config_from_hf(json.loads(config_path.read_text()), **overrides)
  return config, params_from_tensors(read_safetensors_folder(folder), config, dtype)
