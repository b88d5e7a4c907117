"""Temporal position signals: nncore's normalised sinusoidal encoding and the TEF."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _safe_lengths(lengths: jax.Array) -> jax.Array:
  """(B,) -> (B, 1) float lengths, at least 1: an all-padding sample (length 0) would otherwise
  put inf/NaN into the forward pass, and NaN into every gradient through the masks."""
  return jnp.maximum(lengths, 1)[:, None].astype(jnp.float32)


def sinusoidal_positions(lengths: jax.Array, num_clips: int, dims: int,
                         temperature: float = 10000.0) -> jax.Array:
  """Normalised sinusoidal PE (nncore PositionalEncoding(normalize=True)), (B, T, dims).

  pos_t = 2π·t/(n + 1e-6) for t = 1..T, with n each sample's length (B,); channels interleave
  sin (even) and cos (odd) at the same frequency 1/temperature^(2j/dims).
  """
  t = jnp.arange(1, num_clips + 1, dtype=jnp.float32)
  n = _safe_lengths(lengths)
  pos = t[None, :] / (n + 1e-6) * (2 * math.pi)
  freq = temperature ** (jnp.arange(dims) // 2 * 2 / dims)
  angle = pos[..., None] / freq
  return jnp.where(jnp.arange(dims) % 2 == 0, jnp.sin(angle), jnp.cos(angle))


def temporal_endpoint_feature(lengths: jax.Array, num_clips: int) -> jax.Array:
  """TEF [t/n, (t+1)/n] for t = 0..T-1 with n each sample's length (B,): (B, T, 2)."""
  t = jnp.arange(num_clips, dtype=jnp.float32)[None, :]
  n = _safe_lengths(lengths)
  return jnp.stack([t / n, (t + 1) / n], axis=-1)


def _interleave_sin_cos(angle: jax.Array) -> jax.Array:
  """(…, D) angles -> (…, D): sin of the even channels and cos of the odd ones, interleaved
  pairwise as DETR's stack((sin(a[0::2]), cos(a[1::2])), -1).flatten(-2)."""
  return jnp.stack([jnp.sin(angle[..., 0::2]), jnp.cos(angle[..., 1::2])], -1).reshape(
      angle.shape)


def sine_positions_2d(valid: jax.Array, num_feats: int = 128, temperature: float = 10000.0,
                      normalize: bool = True) -> jax.Array:
  """DETR's PositionEmbeddingSine over a (…, H, W) bool map of valid cells: (…, H, W, 2F),
  the y half first. Positions count valid cells (cumsum), normalised to (0, 2π] per row/column."""
  y = jnp.cumsum(valid, axis=-2, dtype=jnp.float32)
  x = jnp.cumsum(valid, axis=-1, dtype=jnp.float32)
  if normalize:
    y = y / (y[..., -1:, :] + 1e-6) * (2 * math.pi)
    x = x / (x[..., :, -1:] + 1e-6) * (2 * math.pi)
  freq = temperature ** (2 * (jnp.arange(num_feats) // 2) / num_feats)
  return jnp.concatenate([_interleave_sin_cos(y[..., None] / freq),
                          _interleave_sin_cos(x[..., None] / freq)], axis=-1)


def anchor_sine_embedding(anchors: jax.Array, num_feats: int = 128) -> jax.Array:
  """DAB-DETR's gen_sineembed_for_position: (…, 2 | 4) normalised anchors (cx, cy[, w, h]) ->
  (…, 2F | 4F) in the order (y, x[, w, h])."""
  freq = 10000.0 ** (2 * (jnp.arange(num_feats) // 2) / num_feats)
  embed = lambda v: _interleave_sin_cos(v[..., None] * (2 * math.pi) / freq)  # noqa: E731
  parts = [embed(anchors[..., 1]), embed(anchors[..., 0])]
  if anchors.shape[-1] == 4:
    parts += [embed(anchors[..., 2]), embed(anchors[..., 3])]
  elif anchors.shape[-1] != 2:
    raise ValueError(f'anchors must have 2 or 4 coordinates, got {anchors.shape[-1]}')
  return jnp.concatenate(parts, axis=-1)


def sequence_sine_table(length: int, dims: int) -> jax.Array:
  """The Transformer's sinusoid table (length, dims): sin on even, cos on odd channels, with
  frequency exp(−2i·ln(10⁴)/dims) (SeqEmbeddingSine)."""
  position = jnp.arange(length, dtype=jnp.float32)[:, None]
  angle = position * jnp.exp(jnp.arange(0, dims, 2, dtype=jnp.float32) * (-math.log(1e4) / dims))
  return jnp.stack([jnp.sin(angle), jnp.cos(angle)], -1).reshape(length, dims)
