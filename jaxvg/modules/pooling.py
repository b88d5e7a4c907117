"""Pooling: attention pooling of query tokens (official AdaPooling), query-guided pooling of a
clip's visual tokens (R²-Tuning), and 2-D grid pooling."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxvg.modules.attention import MASK_VALUE
from jaxvg.modules.layers import Linear


class AdaPooling(nn.Module):
  """a = softmax_L(Linear(C→1, no bias)(x) masked), pooled = Σ_l a_l x_l."""
  dims: int

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    """x (..., L, C), mask (..., L) bool -> (..., C)."""
    logits = Linear(1, self.dims, use_bias=False, name='att')(x)[..., 0]
    logits = logits + jnp.where(mask, 0.0, MASK_VALUE).astype(logits.dtype)
    a = jax.nn.softmax(logits, axis=-1)
    return jnp.einsum('...l,...lc->...c', a, x)


def query_guided_pooling(query_keys: jax.Array, token_keys: jax.Array, tokens: jax.Array,
                         query: jax.Array, query_mask: jax.Array | None) -> jax.Array:
  """R²-Tuning's query-modulated spatial pooling of each clip's visual tokens.

  Every query token attends over a clip's P tokens (one head, logits scaled by 1/√C, the tokens
  themselves as values), adds itself, and the clip keeps the max over the valid query tokens:
  the clip vector holds what the query asks about instead of whatever a query-blind pooling
  (CLS, mean) kept of a frame with several objects in it.

  query_keys (B, L, C), token_keys (B, T, P, C), tokens (B, T, P, C), query (B, L, C),
  query_mask (B, L) bool or None (every token valid) -> (B, T, C); 0 where no query token is
  valid.
  """
  logits = jnp.einsum('blc,btpc->btlp', query_keys, token_keys)
  att = jax.nn.softmax(logits / query_keys.shape[-1]**0.5, axis=-1)
  pooled = jnp.einsum('btlp,btpc->btlc', att, tokens) + query[:, None]
  if query_mask is None:
    return jnp.max(pooled, axis=2)
  mask = query_mask[:, None, :, None]
  pooled = jnp.max(jnp.where(mask, pooled, -jnp.inf), axis=2)
  return jnp.where(jnp.any(mask, axis=2), pooled, 0.0)


def bilinear_resize_matrix(size_in: int, size_out: int) -> np.ndarray:
  """(size_out, size_in) weights of torch `interpolate(mode='bilinear', align_corners=False)`.

  Source coordinate (dst + 0.5)·in/out − 0.5, clamped at 0, two taps; no antialiasing (torch's
  default), unlike `jax.image.resize`, which antialiases when downsampling.
  """
  src = np.maximum((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0.0)
  lo = np.floor(src).astype(int)
  hi = np.minimum(lo + 1, size_in - 1)
  frac = src - lo
  weights = np.zeros((size_out, size_in))
  np.add.at(weights, (np.arange(size_out), lo), 1.0 - frac)
  np.add.at(weights, (np.arange(size_out), hi), frac)
  return weights


def resize_grid_bilinear(x: jax.Array, size_out: tuple[int, int]) -> jax.Array:
  """(..., H, W, C) -> (..., h, w, C), torch bilinear (align_corners=False, no antialias)."""
  wh = jnp.asarray(bilinear_resize_matrix(x.shape[-3], size_out[0]), x.dtype)
  ww = jnp.asarray(bilinear_resize_matrix(x.shape[-2], size_out[1]), x.dtype)
  return jnp.einsum('hH,...HWc,wW->...hwc', wh, x, ww)


def average_pool_grid(x: jax.Array, stride: int) -> jax.Array:
  """(..., H, W, C) -> (..., H // s, W // s, C): torch `avg_pool2d(x, s)` (floor, no padding)."""
  h, w = x.shape[-3] // stride, x.shape[-2] // stride
  x = x[..., :h * stride, :w * stride, :]
  x = x.reshape(x.shape[:-3] + (h, stride, w, stride, x.shape[-1]))
  return x.mean(axis=(-4, -2))
