"""Multi-head attention as in nncore: separate q/k/v/m projections and an additive key mask."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxvg.modules import init

# Additive bias for masked keys. Finite instead of -inf: on any row with a valid key exp() of it
# underflows to exactly 0 (same result as -inf), and a fully masked row (a padded sample) gives a
# finite uniform average instead of NaNs that would poison gradients through jnp.where.
MASK_VALUE = -1e9


class MultiHeadAttention(nn.Module):
  """Scaled dot-product attention over `heads` heads; masks keys (queries are not masked), for
  every query alike or per query."""
  dims: int
  heads: int

  @nn.compact
  def __call__(self, q: jax.Array, k: jax.Array, v: jax.Array,
               key_mask: jax.Array | None = None) -> jax.Array:
    """q (B, Lq, C), k/v (B, Lk, C), key_mask (B, Lk) or (B, Lq, Lk) bool -> (B, Lq, C)."""
    proj = lambda name: nn.Dense(self.dims, kernel_init=init.xavier_uniform,  # noqa: E731
                                 bias_init=nn.initializers.zeros, name=name)
    head_dims = self.dims // self.heads
    split = lambda x: x.reshape(x.shape[:2] + (self.heads, head_dims))  # noqa: E731
    q, k, v = split(proj('q')(q)), split(proj('k')(k)), split(proj('v')(v))
    logits = jnp.einsum('bqhd,bkhd->bhqk', q, k) / head_dims**0.5
    if key_mask is not None:
      mask = key_mask[:, None, None, :] if key_mask.ndim == 2 else key_mask[:, None]
      logits = logits + jnp.where(mask, 0.0, MASK_VALUE).astype(logits.dtype)
    att = jax.nn.softmax(logits, axis=-1)
    out = jnp.einsum('bhqk,bkhd->bqhd', att, v).reshape(q.shape[:2] + (self.dims,))
    return proj('m')(out)



def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, heads: int,
                          key_mask: jax.Array | None = None, scale: float | None = None,
                          drop: Callable[[jax.Array], jax.Array] | None = None) -> jax.Array:
  """Multi-head attention core without projections: q (…, Lq, Dq), k (…, Lk, Dq),
  v (…, Lk, Dv) -> (…, Lq, Dv). Heads split the channels (values may be narrower than keys); `key_mask`
  (…, Lk) bool masks keys additively; `scale` defaults to 1/sqrt(Dq / heads); `drop` (dropout)
  applies to the attention weights."""
  split = lambda x: x.reshape(x.shape[:-1] + (heads, x.shape[-1] // heads))  # noqa: E731
  q, k, v = split(q), split(k), split(v)
  scale = (q.shape[-1])**-0.5 if scale is None else scale
  logits = jnp.einsum('...qhd,...khd->...hqk', q * scale, k)
  if key_mask is not None:
    logits = logits + jnp.where(key_mask, 0.0, MASK_VALUE)[..., None, None, :].astype(logits.dtype)
  att = jax.nn.softmax(logits, axis=-1)
  if drop is not None:
    att = drop(att)
  out = jnp.einsum('...hqk,...khd->...qhd', att, v)
  return out.reshape(out.shape[:-2] + (-1,))


class TorchMultiheadAttention(nn.Module):
  """torch.nn.MultiheadAttention (equal q/k/v widths) in its own parameter layout: the packed
  `in_proj_weight` (3C, C) / `in_proj_bias` and `out_proj`, so official keys map one to one.
  Xavier-uniform in-projection and zero biases, as torch initialises it."""
  dims: int
  heads: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, q: jax.Array, k: jax.Array, v: jax.Array,
               key_mask: jax.Array | None = None, deterministic: bool = True) -> jax.Array:
    """q (…, Lq, C), k/v (…, Lk, C), key_mask (…, Lk) bool (True = attend) -> (…, Lq, C)."""
    weight = self.param('in_proj_weight', nn.initializers.xavier_uniform(),
                        (3 * self.dims, self.dims))
    bias = self.param('in_proj_bias', nn.initializers.zeros, (3 * self.dims,))
    wq, wk, wv = jnp.split(weight, 3)
    bq, bk, bv = jnp.split(bias, 3)
    drop = nn.Dropout(self.dropout, deterministic=deterministic)
    out = dot_product_attention(q @ wq.T + bq, k @ wk.T + bk, v @ wv.T + bv, self.heads,
                                key_mask, drop=drop)
    return nn.Dense(self.dims, kernel_init=init.torch_kernel_init,
                    bias_init=nn.initializers.zeros, name='out_proj')(out)
