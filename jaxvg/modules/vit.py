"""Vision transformers in the Hugging Face layout: SigLIP and CLIP towers of multimodal LLMs.

`jaxvg.modules.clip` holds the OpenAI-layout CLIP (fused in_proj) used by R²-Tuning; multimodal
LLM checkpoints store their towers in the transformers layout (separate q/k/v projections,
`embeddings.patch_embedding`, `encoder.layers.N`), so this tower mirrors those names and conversion
stays a rename plus transposes. One module covers both families:
  SigLIP: patch conv with bias, no class token, no pre-norm, tanh GELU, LayerNorm eps 1e-6.
  CLIP:   patch conv without bias, a class token, `pre_layrnorm`, QuickGELU, eps 1e-5.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvg.modules.clip import CLIP_MEAN, CLIP_STD, quick_gelu

Dtype = Any

ACTIVATIONS = {
    'gelu_pytorch_tanh': lambda x: nn.gelu(x, approximate=True),
    'gelu': lambda x: nn.gelu(x, approximate=False),
    'quick_gelu': quick_gelu,
}


@dataclasses.dataclass(frozen=True)
class ViTConfig:
  """Sizes of a transformers-layout vision tower (`vision_config` names in comments)."""
  image_size: int
  patch_size: int
  hidden_size: int
  intermediate_size: int
  num_layers: int  # num_hidden_layers
  num_heads: int  # num_attention_heads
  hidden_act: str = 'gelu_pytorch_tanh'
  layer_norm_eps: float = 1e-6
  class_token: bool = False  # CLIP: True
  pre_layernorm: bool = False  # CLIP: True (`pre_layrnorm`)
  patch_bias: bool = True  # CLIP: False
  pixel_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # image processor normalisation
  pixel_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

  @property
  def grid(self) -> int:
    return self.image_size // self.patch_size

  @classmethod
  def siglip(cls, **kw) -> 'ViTConfig':
    return cls(**kw)

  @classmethod
  def clip(cls, **kw) -> 'ViTConfig':
    return cls(**{'hidden_act': 'quick_gelu', 'layer_norm_eps': 1e-5, 'class_token': True,
                  'pre_layernorm': True, 'patch_bias': False, 'pixel_mean': CLIP_MEAN,
                  'pixel_std': CLIP_STD, **kw})


class SelfAttention(nn.Module):
  config: ViTConfig
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = self.config
    b, n, d = x.shape
    split = lambda t: t.reshape(b, n, c.num_heads, d // c.num_heads)  # noqa: E731
    dense = lambda name: nn.Dense(d, dtype=self.dtype, name=name)  # noqa: E731
    q, k, v = (split(dense(n_)(x)) for n_ in ('q_proj', 'k_proj', 'v_proj'))
    out = jax.nn.dot_product_attention(q, k, v)
    return dense('out_proj')(out.reshape(b, n, d))


class EncoderLayer(nn.Module):
  """Pre-LN block: x + attn(LN1 x); x + fc2(act(fc1(LN2 x)))."""
  config: ViTConfig
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = self.config
    def ln(name):
      return nn.LayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype, name=name)
    x = x + SelfAttention(c, self.dtype, name='self_attn')(ln('layer_norm1')(x))
    h = nn.Dense(c.intermediate_size, dtype=self.dtype, name='fc1')(ln('layer_norm2')(x))
    h = nn.Dense(c.hidden_size, dtype=self.dtype, name='fc2')(ACTIVATIONS[c.hidden_act](h))
    return x + h


class VisionTower(nn.Module):
  """Normalised NHWC pixels -> the hidden states of one layer (transformers' `hidden_states[i]`)."""
  config: ViTConfig
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, pixels: jax.Array, feature_layer: int = -1) -> jax.Array:
    """(N, H, W, 3) -> (N, tokens, D); `feature_layer` indexes [embeddings, block 1, ...].

    Only the blocks up to the chosen layer run (LLaVA never applies `post_layernorm`).
    """
    c = self.config
    x = nn.Conv(c.hidden_size, (c.patch_size,) * 2, strides=(c.patch_size,) * 2, padding='VALID',
                use_bias=c.patch_bias, dtype=self.dtype, name='patch_embedding')(
                    pixels.astype(self.dtype))
    x = x.reshape(x.shape[0], -1, c.hidden_size)
    if c.class_token:
      cls = self.param('class_embedding', nn.initializers.normal(0.02), (c.hidden_size,))
      cls = jnp.broadcast_to(cls.astype(x.dtype), (x.shape[0], 1, c.hidden_size))
      x = jnp.concatenate([cls, x], axis=1)
    pos = self.param('position_embedding', nn.initializers.normal(0.02),
                     (x.shape[1], c.hidden_size))
    x = x + pos.astype(x.dtype)
    if c.pre_layernorm:
      x = nn.LayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype, name='pre_layrnorm')(x)
    depth = feature_layer % (c.num_layers + 1)
    for i in range(depth):
      x = EncoderLayer(c, self.dtype, name=f'layers_{i}')(x)
    return x


def preprocess_frames(frames: jax.Array, config: ViTConfig) -> jax.Array:
  """(F, H, W, 3) uint8 RGB -> (F, S, S, 3) normalised: bicubic resize to the tower's square input
  (no aspect preservation, as the LLaVA video processors do), /255, (x − mean) / std.

  `jax.image.resize` uses the Keys cubic (a = −0.5) like PIL, without PIL's integer rounding.
  """
  size = config.image_size
  x = jax.image.resize(frames.astype(jnp.float32), (frames.shape[0], size, size, 3), 'bicubic')
  x = jnp.clip(x, 0.0, 255.0) / 255.0
  return (x - jnp.asarray(config.pixel_mean)) / jnp.asarray(config.pixel_std)
