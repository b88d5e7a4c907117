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
