"""CLIP ViT towers (OpenAI layout) that expose every layer's tokens.

R²-Tuning reads the last K block outputs of both towers (all tokens, before the final LayerNorm),
so the towers return the stacked per-layer residual stream besides the usual projected embeddings.
Parameter names follow the OpenAI state dict (`visual/transformer/resblocks_0/attn/in_proj/...`)
so that conversion is a rename plus transposes (jaxvg/convert/clip.py).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
LN_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class CLIPArch:
  """Sizes of one CLIP ViT variant (both towers)."""
  name: str
  vision_width: int
  vision_layers: int
  vision_heads: int
  patch_size: int
  image_size: int
  text_width: int
  text_layers: int
  text_heads: int
  embed_dim: int
  vocab_size: int = 49408
  context_length: int = 77

  @property
  def num_patches(self) -> int:
    return (self.image_size // self.patch_size) ** 2

  @property
  def num_tokens(self) -> int:
    """Vision tokens per image: CLS + patches."""
    return self.num_patches + 1


CLIP_ARCHS: dict[str, CLIPArch] = {a.name: a for a in (
    CLIPArch('ViT-B/32', 768, 12, 12, 32, 224, 512, 12, 8, 512),
    CLIPArch('ViT-B/16', 768, 12, 12, 16, 224, 512, 12, 8, 512),
    CLIPArch('ViT-L/14', 1024, 24, 16, 14, 224, 768, 12, 12, 768),
    CLIPArch('ViT-L/14-336', 1024, 24, 16, 14, 336, 768, 12, 12, 768),
    # Test/benchmark size; embed_dim differs from the widths so transposed projections show.
    CLIPArch('tiny', 64, 4, 2, 32, 224, 64, 4, 2, 32),
)}


def get_arch(arch: str | CLIPArch) -> CLIPArch:
  """Looks an arch up by name (or passes a CLIPArch through)."""
  if isinstance(arch, CLIPArch):
    return arch
  if arch not in CLIP_ARCHS:
    raise KeyError(f'unknown CLIP arch {arch!r}; known: {sorted(CLIP_ARCHS)}')
  return CLIP_ARCHS[arch]


def quick_gelu(x: jax.Array) -> jax.Array:
  """OpenAI CLIP's activation: x * sigmoid(1.702 x)."""
  return x * jax.nn.sigmoid(1.702 * x)


class MultiheadSelfAttention(nn.Module):
  """torch.nn.MultiheadAttention as used by CLIP: fused in_proj (D, 3D), out_proj (D, D)."""
  heads: int
  causal: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(N, L, D) -> (N, L, D)."""
    n, length, width = x.shape
    qkv = nn.Dense(3 * width, dtype=self.dtype, name='in_proj')(x)
    q, k, v = jnp.split(qkv.reshape(n, length, 3 * self.heads, width // self.heads), 3, axis=2)
    out = jax.nn.dot_product_attention(q, k, v, is_causal=self.causal)
    return nn.Dense(width, dtype=self.dtype, name='out_proj')(out.reshape(n, length, width))


class ResidualAttentionBlock(nn.Module):
  """Pre-LN transformer block with a QuickGELU MLP (width x4)."""
  heads: int
  causal: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    width = x.shape[-1]
    ln = lambda name: nn.LayerNorm(epsilon=LN_EPS, dtype=self.dtype, name=name)
    x = x + MultiheadSelfAttention(self.heads, self.causal, self.dtype, name='attn')(ln('ln_1')(x))
    h = nn.Dense(4 * width, dtype=self.dtype, name='c_fc')(ln('ln_2')(x))
    h = nn.Dense(width, dtype=self.dtype, name='c_proj')(quick_gelu(h))
    return x + h


class Transformer(nn.Module):
  """Stack of blocks; returns the input and every block's output: (N, layers + 1, L, D)."""
  layers: int
  heads: int
  causal: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    outputs = [x]
    for i in range(self.layers):
      x = ResidualAttentionBlock(self.heads, self.causal, self.dtype, name=f'resblocks_{i}')(x)
      outputs.append(x)
    return jnp.stack(outputs, axis=1)


class VisionTransformer(nn.Module):
  """CLIP image tower on normalised NHWC pixels."""
  arch: CLIPArch
  dtype: Dtype = jnp.float32

  def setup(self):
    a = self.arch
    init = nn.initializers.normal(a.vision_width ** -0.5)
    self.conv1 = nn.Conv(a.vision_width, (a.patch_size,) * 2, strides=(a.patch_size,) * 2,
                         padding='VALID', use_bias=False, dtype=self.dtype)
    self.class_embedding = self.param('class_embedding', init, (a.vision_width,))
    self.positional_embedding = self.param('positional_embedding', init,
                                           (a.num_tokens, a.vision_width))
    self.ln_pre = nn.LayerNorm(epsilon=LN_EPS, dtype=self.dtype)
    self.transformer = Transformer(a.vision_layers, a.vision_heads, False, self.dtype)
    self.ln_post = nn.LayerNorm(epsilon=LN_EPS, dtype=self.dtype)
    self.proj = self.param('proj', init, (a.vision_width, a.embed_dim))

  def layers(self, pixels: jax.Array) -> jax.Array:
    """(N, H, W, 3) normalised -> (N, layers + 1, P, Dv): after ln_pre, then each block."""
    x = self.conv1(pixels.astype(self.dtype))
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    cls = jnp.broadcast_to(self.class_embedding.astype(x.dtype), (x.shape[0], 1, x.shape[-1]))
    x = jnp.concatenate([cls, x], axis=1) + self.positional_embedding.astype(x.dtype)
    return self.transformer(self.ln_pre(x))

  def embed(self, last_layer: jax.Array) -> jax.Array:
    """(N, P, Dv) last block output -> (N, E) image embedding: ln_post(CLS) @ proj."""
    return self.ln_post(last_layer[:, 0]) @ self.proj.astype(self.dtype)

  def __call__(self, pixels: jax.Array) -> jax.Array:
    return self.embed(self.layers(pixels)[:, -1])


class TextTransformer(nn.Module):
  """CLIP text tower (causal) on (N, context) int token ids."""
  arch: CLIPArch
  dtype: Dtype = jnp.float32

  def setup(self):
    a = self.arch
    self.token_embedding = nn.Embed(a.vocab_size, a.text_width,
                                    embedding_init=nn.initializers.normal(0.02))
    self.positional_embedding = self.param('positional_embedding', nn.initializers.normal(0.01),
                                           (a.context_length, a.text_width))
    self.transformer = Transformer(a.text_layers, a.text_heads, True, self.dtype)
    self.ln_final = nn.LayerNorm(epsilon=LN_EPS, dtype=self.dtype)
    self.text_projection = self.param('text_projection', nn.initializers.normal(a.text_width ** -0.5),
                                      (a.text_width, a.embed_dim))

  def layers(self, tokens: jax.Array) -> jax.Array:
    """(N, L) ids -> (N, layers + 1, L, Dq): the embeddings, then each block (before ln_final)."""
    length = tokens.shape[-1]
    x = self.token_embedding(tokens).astype(self.dtype)
    return self.transformer(x + self.positional_embedding[:length].astype(self.dtype))

  def embed(self, last_layer: jax.Array, tokens: jax.Array) -> jax.Array:
    """(N, L, Dq), (N, L) -> (N, E): ln_final at the EOT token (the largest id) @ projection."""
    eot = last_layer[jnp.arange(last_layer.shape[0]), jnp.argmax(tokens, axis=-1)]
    return self.ln_final(eot) @ self.text_projection.astype(self.dtype)

  def __call__(self, tokens: jax.Array) -> jax.Array:
    return self.embed(self.layers(tokens)[:, -1], tokens)


class CLIP(nn.Module):
  """Both towers; params {'visual': ..., 'text': ..., 'logit_scale': ()}."""
  arch: CLIPArch
  dtype: Dtype = jnp.float32

  def setup(self):
    self.visual = VisionTransformer(self.arch, self.dtype)
    self.text = TextTransformer(self.arch, self.dtype)
    self.logit_scale = self.param('logit_scale', nn.initializers.constant(jnp.log(1 / 0.07)), ())

  def encode_image_layers(self, pixels: jax.Array, num_layers: int | None = None) -> jax.Array:
    """(N, H, W, 3) normalised -> (N, K, P, Dv): the last K of [ln_pre, block 1, ...] (all if None)."""
    layers = self.visual.layers(pixels)
    return layers if num_layers is None else layers[:, -num_layers:]

  def encode_text_layers(self, tokens: jax.Array, num_layers: int | None = None) -> jax.Array:
    """(N, L) ids -> (N, K, L, Dq): the last K of [embeddings, block 1, ...] (all if None)."""
    layers = self.text.layers(tokens)
    return layers if num_layers is None else layers[:, -num_layers:]

  def encode_image(self, pixels: jax.Array) -> jax.Array:
    """(N, H, W, 3) normalised -> (N, E) projected image embedding (not L2-normalised)."""
    return self.visual(pixels)

  def encode_text(self, tokens: jax.Array) -> jax.Array:
    """(N, L) ids -> (N, E) projected text embedding (not L2-normalised)."""
    return self.text(tokens)

  def __call__(self, pixels: jax.Array, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns (image embeddings (N, E), text embeddings (M, E))."""
    return self.encode_image(pixels), self.encode_text(tokens)


def normalize_frames(frames: jax.Array, dtype: Dtype = jnp.float32) -> jax.Array:
  """(..., H, W, 3) uint8 RGB -> CLIP input: /255, then the CLIP mean/std per channel."""
  x = frames.astype(jnp.float32) / 255.0
  return ((x - jnp.asarray(CLIP_MEAN)) / jnp.asarray(CLIP_STD)).astype(dtype)


def encode_video_layers(model: CLIP, params: Any, frames: jax.Array, num_layers: int = 4
                        ) -> jax.Array:
  """Frozen image tower for the jitted step: (N, H, W, 3) uint8 centre crops -> (N, K, P, Dv).

  `params` is the CLIP param tree (without the 'params' collection wrapper); no gradient flows
  into it. These are the R²-Tuning `clip_*_vid_k*` cache contents (last K block outputs).
  """
  params = jax.lax.stop_gradient(params)
  pixels = normalize_frames(frames, model.dtype)
  return model.apply({'params': params}, pixels, num_layers, method=CLIP.encode_image_layers)


def encode_text_layers(model: CLIP, params: Any, tokens: jax.Array, num_layers: int = 4
                       ) -> jax.Array:
  """Frozen text tower for the jitted step: (N, 77) int32 ids -> (N, 77, K, Dq).

  Padding positions are computed too; the caller masks with `tokens != 0` (the causal mask keeps
  the real tokens independent of the padding).
  """
  params = jax.lax.stop_gradient(params)
  layers = model.apply({'params': params}, tokens, num_layers, method=CLIP.encode_text_layers)
  return jnp.swapaxes(layers, 1, 2)


def init_params(model: CLIP, seed: int = 0) -> Any:
  """Deterministic random params (benchmarks, smoke tests; no weights are downloadable here).

  Filled in numpy from the param shapes: compiling `model.init` (one RNG program per tensor)
  takes tens of seconds, this takes well under one. LayerNorms are identity, biases zero,
  embeddings N(0, 0.02), every other tensor N(0, fan_in^-1/2).
  """
  a = model.arch
  pixels = jax.ShapeDtypeStruct((1, a.image_size, a.image_size, 3), jnp.float32)
  tokens = jax.ShapeDtypeStruct((1, a.context_length), jnp.int32)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), pixels, tokens)['params']
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = path[-1].key
    if name == 'logit_scale':
      return np.asarray(np.log(1 / 0.07), np.float32)
    if name in ('scale', 'bias'):
      return np.full(leaf.shape, 1.0 if name == 'scale' else 0.0, np.float32)
    std = 0.02 if name in ('embedding', 'positional_embedding', 'class_embedding') else (
        float(np.prod(leaf.shape[:-1])) ** -0.5)
    return (std * rng.standard_normal(leaf.shape, np.float32)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(fill, shapes)
