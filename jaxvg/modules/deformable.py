"""1-D deformable attention over a clip sequence, sampled relative to a (centre, width) span.

Sampling follows Deformable DETR / TadTR: a normalised position p ∈ [0, 1] of a sequence of n clips
reads the continuous index x = p·n − 0.5 (clip i covers [i/n, (i+1)/n]) by linear interpolation,
with zeros outside the n valid clips (grid_sample's zero padding). It is computed as a product with
the hat kernel max(0, 1 − |x − t|) over the T clip slots instead of a gather: a dense matmul suits
TPU/GPU matrix units at these sizes (T ≤ a few hundred), the zero padding and the mask of padded
clips come for free, and the result is differentiable in the positions.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxvg.modules import init


def interpolation_weights(positions: jax.Array, lengths: jax.Array, num_clips: int) -> jax.Array:
  """Linear-interpolation weights (B, ..., T) of normalised positions (B, ...) over T clip slots.

  Slot t gets max(0, 1 − |p·n − 0.5 − t|) if t < n (each sample's valid length) else 0, so
  positions outside the valid clips read zeros and padded clips are never read.
  """
  n = lengths.astype(positions.dtype).reshape((-1,) + (1,) * (positions.ndim - 1))
  x = positions * n - 0.5
  t = jnp.arange(num_clips, dtype=positions.dtype)
  hat = jnp.maximum(0.0, 1.0 - jnp.abs(x[..., None] - t))
  valid = t < n[..., None]
  return jnp.where(valid, hat, 0.0)


def interpolate(values: jax.Array, positions: jax.Array, lengths: jax.Array) -> jax.Array:
  """values (B, T, C) read at normalised positions (B, Q) -> (B, Q, C) (see the module doc)."""
  weights = interpolation_weights(positions, lengths, values.shape[1])
  return jnp.einsum('bqt,btc->bqc', weights, values)


def span_positions(spans: jax.Array, offsets: jax.Array) -> jax.Array:
  """Positions c + o·w/2 for spans (S..., 2) = (centre, width) and offsets o (S..., E...).

  o = −1, 0, +1 are the span's left edge, centre and right edge; |o| > 1 reaches beyond it.
  """
  extra = offsets.ndim - (spans.ndim - 1)
  centre = spans[..., 0].reshape(spans.shape[:-1] + (1,) * extra)
  width = spans[..., 1].reshape(spans.shape[:-1] + (1,) * extra)
  return centre + offsets * width / 2


def tadtr_grid_bias(heads: int, points: int) -> np.ndarray:
  """TadTR's 1-D form of Deformable DETR's offset-bias grid, (heads·points,).

  Head h looks in direction cos(4πh/heads) (1, 0, −1, 0, … for 8 heads), point k at k+1 times
  it; divided by `points` in `DeformableSpanAttention` the last point lands on the span edge.
  """
  theta = np.arange(heads, dtype=np.float32) * (4.0 * math.pi / heads)
  direction = np.cos(theta)
  direction = np.where(np.abs(direction) < 1e-6, 0.0, direction)
  return (direction[:, None] * np.arange(1, points + 1, dtype=np.float32)[None, :]).reshape(-1)


class DeformableSpanAttention(nn.Module):
  """Each query attends to `points` positions per head around its span.

  Offsets o and weights a come from `query_features` (the query's hidden state in Deformable DETR;
  RDSA passes features of the dense stream at the span instead); position c + (o/points)·w/2
  (TadTR's segment form), output W_O · concat_h Σ_k softmax_k(a)_hk · V_h(p_hk).

  `offset_init`: 'grid' (TadTR / Deformable DETR: zero offset kernel, grid bias, zero attention
  logits) or 'zeros' (every point starts at the centre; the "PureInit" ablation row, [assumed]).
  """
  dims: int
  heads: int
  points: int
  offset_init: str = 'grid'

  @nn.compact
  def __call__(self, query_features: jax.Array, spans: jax.Array, values: jax.Array,
               lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
    """query_features (B, M, Dq), spans (B, M, 2), values (B, T, C), lengths (B,) ->
    (out (B, M, C), positions (B, M, heads, points))."""
    if self.offset_init == 'grid':
      bias = jnp.asarray(tadtr_grid_bias(self.heads, self.points))
    elif self.offset_init == 'zeros':
      bias = jnp.zeros((self.heads * self.points,))
    else:
      raise ValueError(f"offset_init must be 'grid' or 'zeros', got {self.offset_init!r}")
    b, m = query_features.shape[:2]
    shape = (b, m, self.heads, self.points)
    offsets = nn.Dense(self.heads * self.points, kernel_init=nn.initializers.zeros,
                       bias_init=lambda *_: bias, name='sampling_offsets')(query_features)
    logits = nn.Dense(self.heads * self.points, kernel_init=nn.initializers.zeros,
                      bias_init=nn.initializers.zeros, name='attention_weights')(query_features)
    att = jax.nn.softmax(logits.reshape(shape), axis=-1)
    positions = span_positions(spans, offsets.reshape(shape) / self.points)
    proj = lambda name: nn.Dense(self.dims, kernel_init=init.xavier_uniform,  # noqa: E731
                                 bias_init=nn.initializers.zeros, name=name)
    v = proj('value_proj')(values).reshape(values.shape[:2] + (self.heads, -1))
    # Σ_k a_k · interp(p_k) = (Σ_k a_k · hat(p_k)) · V: one (M, T) weight matrix per head.
    weights = jnp.einsum('bmhk,bmhkt->bmht', att,
                         interpolation_weights(positions, lengths, values.shape[1]))
    out = jnp.einsum('bmht,bthd->bmhd', weights, v).reshape(b, m, -1)
    return proj('output_proj')(out), positions


class ReferenceDeformableSelfAttention(nn.Module):
  """RDSA: deformable attention whose offsets and weights come from the dense stream itself.

  C = Conv1d(D) (temporal, zero padded at each sample's true end), read by linear interpolation at
  the span's left edge, centre and right edge, concatenated (3C) and projected to the query
  features of a `DeformableSpanAttention` over D. Queries and keys then share the latent space
  of D, so the offsets see the content around the span and can learn to move past its edges.
  """
  dims: int
  heads: int
  points: int
  kernel_size: int = 3
  offset_init: str = 'grid'

  @nn.compact
  def __call__(self, spans: jax.Array, dense: jax.Array, dense_mask: jax.Array
               ) -> tuple[jax.Array, jax.Array]:
    """spans (B, M, 2), dense (B, T, C), dense_mask (B, T) bool -> (out (B, M, C), positions)."""
    lengths = dense_mask.sum(-1)
    dense = jnp.where(dense_mask[..., None], dense, 0.0)
    pad = self.kernel_size // 2
    conv = nn.Conv(self.dims, (self.kernel_size,), padding=[(pad, pad)],
                   kernel_init=init.torch_kernel_init,
                   bias_init=init.torch_bias_init(self.dims * self.kernel_size), name='conv')
    context = conv(dense)
    b, m = spans.shape[:2]
    edges = span_positions(spans, jnp.broadcast_to(jnp.array([-1.0, 0.0, 1.0]), (b, m, 3)))
    sampled = interpolate(context, edges.reshape(b, m * 3), lengths).reshape(b, m, -1)
    query = nn.Dense(self.dims, kernel_init=init.xavier_uniform,
                     bias_init=nn.initializers.zeros, name='query_proj')(sampled)
    return DeformableSpanAttention(self.dims, self.heads, self.points, self.offset_init,
                                   name='attention')(query, spans, dense, lengths)
