"""Seeded numpy CLIP weights and inputs, shared by the tests and tests/fixtures/clip_make_fixtures.py.

The parity fixtures store only reference outputs; both sides rebuild the same weights from the
seed, so nothing large is committed.
"""
from __future__ import annotations

import numpy as np

from jaxvg.convert.clip import openai_shapes
from jaxvg.modules.clip import CLIPArch

# Micro arch for the committed .pt archives (tiny vocab and image keep the files small);
# heads = width // 64 as OpenAI's build_model infers them.
MICRO = CLIPArch('custom', vision_width=64, vision_layers=1, vision_heads=1, patch_size=8,
                 image_size=16, text_width=64, text_layers=1, text_heads=1, embed_dim=32,
                 vocab_size=100, context_length=77)


def openai_state_dict(arch: CLIPArch, seed: int) -> dict[str, np.ndarray]:
  """OpenAI-layout float32 weights with CLIP-like scales (LayerNorms near identity)."""
  rng = np.random.default_rng(seed)
  state = {}
  for key, shape in openai_shapes(arch).items():
    if key == 'logit_scale':
      state[key] = np.asarray(np.log(1 / 0.07), np.float32)
      continue
    if key.endswith('.weight') and ('ln_' in key):
      value = 1.0 + 0.1 * rng.standard_normal(shape, np.float32)
    elif key.endswith('bias'):
      value = 0.02 * rng.standard_normal(shape, np.float32)
    else:
      fan_in = shape[-1] if len(shape) == 2 and key.endswith('.weight') else shape[0]
      if key.endswith('conv1.weight'):
        fan_in = int(np.prod(shape[1:]))
      value = rng.standard_normal(shape, np.float32) * np.float32(fan_in ** -0.5)
    state[key] = value.astype(np.float32)
  return state


def frames(arch: CLIPArch, seed: int, n: int = 2) -> np.ndarray:
  """(n, S, S, 3) uint8 centre crops: a smooth pattern plus noise (not pure noise)."""
  rng = np.random.default_rng(seed)
  s = arch.image_size
  yy, xx = np.mgrid[0:s, 0:s] / s
  base = np.stack([np.sin(6 * xx + i) + np.cos(4 * yy - i) for i in range(3)], -1)
  out = [(base * 60 + 128 + rng.normal(0, 30, base.shape) * (k + 1)).clip(0, 255)
         for k in range(n)]
  return np.stack(out).astype(np.uint8)


def token_ids(arch: CLIPArch, seed: int) -> np.ndarray:
  """(2, context) int32: SOT, random ids, EOT (the largest id), zero padding; lengths 9 and 14."""
  rng = np.random.default_rng(seed)
  out = np.zeros((2, arch.context_length), np.int32)
  for row, length in enumerate((9, 14)):
    out[row, 0] = arch.vocab_size - 2
    out[row, 1:length - 1] = rng.integers(1, arch.vocab_size - 2, length - 2)
    out[row, length - 1] = arch.vocab_size - 1
  return out


_HF_NAMES = (
    ('visual.transformer.resblocks.', 'vision_model.encoder.layers.'),
    ('transformer.resblocks.', 'text_model.encoder.layers.'),
    ('visual.class_embedding', 'vision_model.embeddings.class_embedding'),
    ('visual.conv1.weight', 'vision_model.embeddings.patch_embedding.weight'),
    ('visual.positional_embedding', 'vision_model.embeddings.position_embedding.weight'),
    ('visual.ln_pre.', 'vision_model.pre_layrnorm.'),
    ('visual.ln_post.', 'vision_model.post_layernorm.'),
    ('token_embedding.', 'text_model.embeddings.token_embedding.'),
    ('ln_final.', 'text_model.final_layer_norm.'),
    ('.ln_1.', '.layer_norm1.'), ('.ln_2.', '.layer_norm2.'),
    ('.mlp.c_fc.', '.mlp.fc1.'), ('.mlp.c_proj.', '.mlp.fc2.'),
    ('.attn.out_proj.', '.self_attn.out_proj.'),
)


def hf_state_dict(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """OpenAI names -> HF CLIPModel names (written independently of jaxvg.convert)."""
  out = {}
  for key, value in state.items():
    if key in ('visual.proj', 'text_projection'):
      out['visual_projection.weight' if key == 'visual.proj' else 'text_projection.weight'] = (
          np.ascontiguousarray(value.T))
      continue
    name = key
    for a, b in _HF_NAMES:
      if name.startswith(a) or (a.startswith('.') and a in name):
        name = name.replace(a, b, 1)
    if name == 'positional_embedding':
      name = 'text_model.embeddings.position_embedding.weight'
    if '.attn.in_proj_' in name:
      kind = name.rsplit('_', 1)[1]
      for part, chunk in zip('qkv', np.split(value, 3, axis=0)):
        out[name.replace(f'.attn.in_proj_{kind}', f'.self_attn.{part}_proj.{kind}')] = (
            np.ascontiguousarray(chunk))
      continue
    out[name] = value
  return out
