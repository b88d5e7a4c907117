"""A generic LLaVA: vision tower -> MLP projector -> per-frame 2-D pooling -> newline -> decoder.

One code path serves LLaVA-OneVision (SigLIP + Qwen2, project then bilinear-pool, one newline per
video) and LLaVA-NeXT-Video (CLIP + Llama, average pool; transformers pools before the projector,
the STVG fork after it). The visual tokens are spliced into the text embeddings as one contiguous
block, where the zero-shot grounder also adds its learnable visual prompt.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvg.modules.llm import AttentionReadout, CausalDecoder, DecoderConfig
from jaxvg.modules.pooling import average_pool_grid, resize_grid_bilinear
from jaxvg.modules.vit import ACTIVATIONS, ViTConfig, VisionTower

Dtype = Any


@dataclasses.dataclass(frozen=True)
class LlavaConfig:
  """Architecture of one LLaVA backend (transformers / LLaVA-NeXT config names in comments)."""
  vision: ViTConfig
  decoder: DecoderConfig
  vision_feature_layer: int = -1  # OneVision -1 (of the 26-layer tower); NeXT-Video -2
  drop_class_token: bool = False  # vision_feature_select_strategy == 'default'
  projector_act: str = 'gelu'  # projector_hidden_act (exact erf GELU)
  pool_mode: str = 'bilinear'  # mm_spatial_pool_mode: 'bilinear' (to ceil(g/s)) or 'average'
  pool_stride: int = 2  # mm_spatial_pool_stride; the STVG OV block uses 5, NeXT-Video 4
  pool_before_projector: bool = False  # transformers' NeXT-Video order; the STVG fork pools after
  newline: bool = True  # mm_newline_position == 'one_token': one image_newline after all frames

  @property
  def pooled_grid(self) -> int:
    """Side of each frame's pooled token grid."""
    g = self.vision.grid
    if self.pool_mode == 'bilinear':
      return math.ceil(g / self.pool_stride)
    return g // self.pool_stride

  def num_visual_tokens(self, num_frames: int) -> int:
    return num_frames * self.pooled_grid ** 2 + int(self.newline)


class Projector(nn.Module):
  """mlp2x_gelu: linear_2(act(linear_1(x)))."""
  out_dims: int
  act: str = 'gelu'
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Dense(self.out_dims, dtype=self.dtype, name='linear_1')(x)
    return nn.Dense(self.out_dims, dtype=self.dtype, name='linear_2')(ACTIVATIONS[self.act](x))


class Llava(nn.Module):
  """Params {'vision_tower', 'multi_modal_projector', 'image_newline'?, 'language_model'}."""
  config: LlavaConfig
  dtype: Dtype = jnp.float32
  readout: AttentionReadout | None = None
  remat: bool = False

  def setup(self):
    c = self.config
    self.vision_tower = VisionTower(c.vision, self.dtype)
    self.multi_modal_projector = Projector(c.decoder.hidden_size, c.projector_act, self.dtype)
    if c.newline:
      self.image_newline = self.param('image_newline', nn.initializers.normal(0.02),
                                      (c.decoder.hidden_size,))
    self.language_model = CausalDecoder(c.decoder, self.dtype, self.readout, self.remat)

  def _pool(self, grid: jax.Array) -> jax.Array:
    c = self.config
    if c.pool_mode == 'bilinear':
      return resize_grid_bilinear(grid, (c.pooled_grid, c.pooled_grid))
    if c.pool_mode == 'average':
      return average_pool_grid(grid, c.pool_stride)
    raise ValueError(f'unknown pool_mode {c.pool_mode!r}; expected bilinear or average')

  def encode_video(self, pixels: jax.Array) -> jax.Array:
    """(F, H, W, 3) normalised frames -> (num_visual_tokens(F), D) in time, then row-major order."""
    c = self.config
    feats = self.vision_tower(pixels, c.vision_feature_layer)
    if c.drop_class_token:
      feats = feats[:, 1:]
    g = c.vision.grid
    grid = lambda x: x.reshape(x.shape[0], g, g, x.shape[-1])  # noqa: E731
    if c.pool_before_projector:
      tokens = self.multi_modal_projector(self._pool(grid(feats)))
    else:
      tokens = self._pool(grid(self.multi_modal_projector(feats)))
    tokens = tokens.reshape(-1, tokens.shape[-1])
    if c.newline:
      tokens = jnp.concatenate([tokens, self.image_newline[None].astype(tokens.dtype)], axis=0)
    return tokens

  def embed_text(self, ids: jax.Array) -> jax.Array:
    return self.language_model.embed(ids)

  def decode(self, embeds: jax.Array, logit_positions: jax.Array,
             readout_rows: jax.Array | None = None) -> dict[str, jax.Array]:
    return self.language_model(embeds, logit_positions, readout_rows)

  def splice(self, ids: jax.Array, visual: jax.Array, visual_start: int | jax.Array) -> jax.Array:
    """Text embeddings of (B, S) ids with (B, V, D) visual tokens written at [start, start + V)."""
    embeds = self.embed_text(ids)
    return jax.lax.dynamic_update_slice(embeds, visual.astype(embeds.dtype), (0, visual_start, 0))

  def __call__(self, pixels: jax.Array, ids: jax.Array, visual_start: int | jax.Array,
               logit_positions: jax.Array, readout_rows: jax.Array | None = None,
               visual_prompt: jax.Array | None = None) -> dict[str, jax.Array]:
    """One video (F, H, W, 3) and (B, S) prompts holding a placeholder block at `visual_start`."""
    visual = self.encode_video(pixels)
    if visual_prompt is not None:
      visual = visual + visual_prompt
    visual = jnp.broadcast_to(visual, (ids.shape[0],) + visual.shape[-2:])
    return self.decode(self.splice(ids, visual, visual_start), logit_positions, readout_rows)
