"""Frozen CLIP for jaxvg: `load`, `init_random`, `tokenize`, `preprocess`.

    model, params = jaxvg.clip.load('ViT-B-32.pt')          # OpenAI .pt or HF safetensors
    model, params = jaxvg.clip.load('synthetic:tiny')       # pretrained on the synthetic
                                                            # benchmark's renderer, cached
    layers = jaxvg.modules.clip.encode_video_layers(model, params, frames, num_layers=4)
"""
from __future__ import annotations

import os
from typing import Any

import jax.numpy as jnp

from jaxvg.clip.preprocess import preprocess
from jaxvg.clip.tokenizer import tokenize
from jaxvg.modules.clip import CLIP, CLIP_ARCHS, CLIPArch, get_arch, init_params

__all__ = ['load', 'init_random', 'tokenize', 'preprocess', 'CLIP', 'CLIP_ARCHS', 'CLIPArch']


def load(path: str | os.PathLike, arch: str | CLIPArch | None = None,
         dtype: Any = jnp.float32) -> tuple[CLIP, Any]:
  """Weight file -> (module, params). The arch is inferred from the shapes unless given.

  'synthetic:<arch>' names the CLIP pretrained on the synthetic benchmark's frames and captions
  (`jaxvg.clip.pretrain`; trained on first use, then cached). `dtype` is the compute dtype
  (params stay float32). Raises naming the missing or mis-shaped key of a wrong or truncated
  file.
  """
  if str(path).startswith('synthetic:'):
    from jaxvg.clip import pretrain
    model, params = pretrain.ensure_pretrained(str(path)[len('synthetic:'):])
    return CLIP(model.arch, dtype), params
  from jaxvg.convert.clip import load_clip_params
  arch, params = load_clip_params(path, arch)
  return CLIP(arch, dtype), params


def init_random(arch: str | CLIPArch, seed: int = 0, dtype: Any = jnp.float32
                ) -> tuple[CLIP, Any]:
  """(module, deterministic random params) for benchmarks and tests without weights."""
  model = CLIP(get_arch(arch), dtype)
  return model, init_params(model, seed)
