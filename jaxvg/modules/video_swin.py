"""Video Swin Transformer (Liu et al., CVPR 2022) as CG-STVG runs it: the MTTR/ReferFormer wrapper
with a (1, 4, 4) patch, so time is never downsampled and every stage gives a per-frame map.

The official `VideoSwinTransformerBackbone` (HengLan/CGSTVG `models/vidswin`) keeps the K400
stages, moves each stage's PatchMerging after the stage output (`downsamples.i`), drops the final
norm, and returns every stage's map before its downsampling; CG-STVG reads stage 4 (768-d at
stride 32, the grid of ResNet C5: both are ceil(H / 32)). Kept exactly, including what only shows
at small sizes: a window dimension longer than the input is clipped to it (its shift then 0),
the shift mask uses -100, and a clipped window reads the first N x N entries of the full window's
relative-position index. Channels-last throughout: (B, T, H, W, C).

Padding in time (`frame_mask`, a prefix per sample) reproduces the official run on the real
frames alone: after `norm1` the padded frames are zeros (the official pads with zeros to a
multiple of the window there) and keys beyond that official padding are masked. This is exact
unless a sample has no more real frames than the temporal window while the batch has more (the
official then drops the temporal shift). Spatial padding is not masked: a frame smaller than the
canvas sees its zero border, as it would in a padded official batch.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import einops
import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxvg.modules.layers import LayerNorm

Window = tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class VideoSwinArch:
  """`configs['video_swin_t_p4w7']` of the official file (drop path 0.2 is inactive here: the
  tower runs frozen and deterministic)."""
  embed_dim: int = 96
  depths: tuple[int, ...] = (2, 2, 6, 2)
  heads: tuple[int, ...] = (3, 6, 12, 24)
  window: Window = (8, 7, 7)
  patch: Window = (1, 4, 4)
  mlp_ratio: float = 4.0
  # Frames the patch embedding reads around each of its own (centred, zeros beyond the clip),
  # at temporal stride patch[0]. 0: patch[0], Video-Swin's (kernel = stride). A longer one
  # gives a small tower pixel motion that a short pretraining cannot learn by attention alone.
  patch_frames: int = 0

  def __post_init__(self):
    if self.patch_frames and self.patch_frames < self.patch[0]:
      raise ValueError(f'patch_frames={self.patch_frames} is shorter than the temporal patch '
                       f'{self.patch[0]}')

  @property
  def out_dims(self) -> tuple[int, ...]:
    return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))


VIDEO_SWIN_T = VideoSwinArch()


def clipped_window(size: Sequence[int], window: Window, shift: Window) -> tuple[Window, Window]:
  """`get_window_size`: a window dimension not shorter than the input becomes the input's, with
  no shift."""
  use_window, use_shift = list(window), list(shift)
  for i, n in enumerate(size):
    if n <= window[i]:
      use_window[i], use_shift[i] = n, 0
  return tuple(use_window), tuple(use_shift)


def partition(x: jax.Array, window: Window) -> jax.Array:
  """(B, D, H, W, ...) -> (B, windows, Wd·Wh·Ww, ...) in the official window order."""
  return einops.rearrange(x, 'b (d p) (h q) (w r) ... -> b (d h w) (p q r) ...',
                          p=window[0], q=window[1], r=window[2])


def unpartition(x: jax.Array, window: Window, size: Window) -> jax.Array:
  d, h, w = (n // k for n, k in zip(size, window))
  return einops.rearrange(x, 'b (d h w) (p q r) c -> b (d p) (h q) (w r) c', d=d, h=h, w=w,
                          p=window[0], q=window[1], r=window[2])


def shift_mask(size: Window, window: Window, shift: Window) -> np.ndarray:
  """`compute_mask`: (windows, N, N) of 0 / -100 separating the regions a cyclic shift brings
  into one window (the official slices, including their meaning when a shift is 0)."""
  labels = np.zeros(size, np.float32)
  count = 0
  slices = [(slice(-k), slice(-k, -s), slice(-s, None)) for k, s in zip(window, shift)]
  for d in slices[0]:
    for h in slices[1]:
      for w in slices[2]:
        labels[d, h, w] = count
        count += 1
  labels = np.asarray(partition(labels[None], window))[0]          # (windows, N)
  return np.where(labels[:, None, :] != labels[:, :, None], -100.0, 0.0).astype(np.float32)


def relative_position_index(window: Window) -> np.ndarray:
  """(N, N) index into the (2Wd-1)(2Wh-1)(2Ww-1)-row bias table."""
  coords = np.stack(np.meshgrid(*[np.arange(k) for k in window], indexing='ij')).reshape(3, -1)
  rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + np.array(window) - 1
  return rel @ np.array([(2 * window[1] - 1) * (2 * window[2] - 1), 2 * window[2] - 1, 1])


class WindowAttention3D(nn.Module):
  """Multi-head self-attention inside each window, with the relative-position bias."""
  dims: int
  heads: int
  window: Window

  @nn.compact
  def __call__(self, x: jax.Array, bias: jax.Array | None) -> jax.Array:
    """x (B, windows, N, C); bias broadcastable to (B, windows, heads, N, N) or None."""
    n = x.shape[2]
    table = self.param('relative_position_bias_table', nn.initializers.truncated_normal(0.02),
                       (math.prod(2 * k - 1 for k in self.window), self.heads))
    index = relative_position_index(self.window)[:n, :n]   # official: the FULL window's index
    qkv = nn.Dense(3 * self.dims, name='qkv')(x)
    q, k, v = einops.rearrange(qkv, 'b w n (three h d) -> three b w h n d', three=3,
                               h=self.heads)
    logits = jnp.einsum('bwhqd,bwhkd->bwhqk', q * (self.dims // self.heads) ** -0.5, k)
    logits = logits + jnp.transpose(table[index], (2, 0, 1))
    if bias is not None:
      logits = logits + bias
    out = jnp.einsum('bwhqk,bwhkd->bwqhd', jax.nn.softmax(logits, axis=-1), v)
    return nn.Dense(self.dims, name='proj')(out.reshape(out.shape[:3] + (self.dims,)))


class SwinBlock3D(nn.Module):
  """Pre-norm (shifted-)window attention and MLP, both residual."""
  dims: int
  heads: int
  window: Window
  shift: Window
  mlp_ratio: float

  @nn.compact
  def __call__(self, x: jax.Array, mask_from: jax.Array | None,
               frame_valid: jax.Array | None) -> jax.Array:
    """x (B, D, H, W, C); frame_valid (B, D): frames kept (zeros after norm1 otherwise);
    mask_from (B,): frames from this one on are masked as keys (None: no time padding)."""
    size = x.shape[1:4]
    window, shift = clipped_window(size, self.window, self.shift)
    padded = tuple(-(-n // k) * k for n, k in zip(size, window))
    h = LayerNorm(name='norm1')(x)
    if frame_valid is not None:
      h = jnp.where(frame_valid[:, :, None, None, None], h, 0)
    h = jnp.pad(h, [(0, 0)] + [(0, p - n) for p, n in zip(padded, size)] + [(0, 0)])
    frame_index = jnp.broadcast_to(jnp.arange(padded[0])[:, None, None], padded)
    bias = None
    if any(shift):   # cyclic shift; the mask keeps the regions it brings together apart
      h = jnp.roll(h, [-s for s in shift], axis=(1, 2, 3))
      frame_index = jnp.roll(frame_index, [-s for s in shift], axis=(0, 1, 2))
      bias = jnp.asarray(shift_mask(padded, window, shift))[None, :, None]   # (1, w, 1, N, N)
    if mask_from is not None:
      keys = partition(frame_index[None], window)[0]                          # (w, N)
      key_bias = jnp.where(keys[None] < mask_from[:, None, None], 0.0, -1e9)  # (B, w, N)
      key_bias = key_bias[:, :, None, None, :]
      bias = key_bias if bias is None else bias + key_bias
    h = WindowAttention3D(self.dims, self.heads, self.window, name='attn')(
        partition(h, window), bias)
    h = unpartition(h, window, padded)
    if any(shift):
      h = jnp.roll(h, list(shift), axis=(1, 2, 3))
    x = x + h[:, :size[0], :size[1], :size[2]]
    h = LayerNorm(name='norm2')(x)
    h = nn.Dense(int(self.dims * self.mlp_ratio), name='mlp_fc1')(h)
    h = nn.Dense(self.dims, name='mlp_fc2')(nn.gelu(h, approximate=False))
    return x + h


class PatchMerging(nn.Module):
  """2x2 spatial neighbours concatenated (odd sizes zero-padded), LayerNorm, Linear 4C -> 2C."""
  dims: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h, w = x.shape[2:4]
    x = jnp.pad(x, [(0, 0), (0, 0), (0, h % 2), (0, w % 2), (0, 0)])
    x = jnp.concatenate([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2],
                         x[:, :, 1::2, 1::2]], axis=-1)
    return nn.Dense(2 * self.dims, use_bias=False, name='reduction')(LayerNorm(name='norm')(x))


class VideoSwin(nn.Module):
  """(B, T, H, W, 3) normalised frames -> every stage's map (B, T, ceil(H/4·2^-i), ..., C_i),
  taken before that stage's downsampling (`VideoSwinTransformerBackbone.forward`)."""
  arch: VideoSwinArch = VIDEO_SWIN_T

  @nn.compact
  def __call__(self, videos: jax.Array, frame_mask: jax.Array | None = None
               ) -> list[jax.Array]:
    a = self.arch
    pads = [(0, -n % p) for n, p in zip(videos.shape[1:4], a.patch)]
    kernel = (a.patch_frames or a.patch[0],) + a.patch[1:]
    if kernel[0] != a.patch[0]:
      if frame_mask is not None:      # a padded frame reads zeros beyond its clip's end
        videos = videos * frame_mask[:, :, None, None, None]
      extra = kernel[0] - a.patch[0]
      pads[0] = (extra // 2, pads[0][1] + extra - extra // 2)
    x = jnp.pad(videos, [(0, 0), *pads, (0, 0)])
    x = nn.Conv(a.embed_dim, kernel, a.patch, padding='VALID', name='patch_embed_proj')(x)
    x = LayerNorm(name='patch_embed_norm')(x)
    mask_from = frame_valid = None
    if frame_mask is not None:
      lengths = frame_mask.sum(-1)
      window_t = min(a.window[0], x.shape[1])
      # keys inside the official zero padding (to a multiple of the window) stay, later ones go
      mask_from = jnp.where(lengths <= window_t, lengths, -(-lengths // window_t) * window_t)
      frame_valid = frame_mask
    outputs, shift = [], tuple(k // 2 for k in a.window)
    for i, (depth, heads, dims) in enumerate(zip(a.depths, a.heads, a.out_dims)):
      for j in range(depth):
        x = SwinBlock3D(dims, heads, a.window, (0, 0, 0) if j % 2 == 0 else shift,
                        a.mlp_ratio, name=f'layers_{i}_blocks_{j}')(x, mask_from, frame_valid)
      outputs.append(x)
      if i + 1 < len(a.depths):
        x = PatchMerging(dims, name=f'downsamples_{i}')(x)
    return outputs
