"""DAB-DETR-style decoder pieces as CG-STVG uses them: the DETR MLP head, the anchor-conditioned
decoder layer (content + time + anchor-position self-attention, per-head [content ; sine-anchor]
cross-attention) and the BERT cross layer that injects instance context.

Everything is batch-first and masked: queries (B, T, C), memory (B, T, N, C), one query per
frame attending to its own frame's N tokens.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxvg.modules.attention import TorchMultiheadAttention, dot_product_attention
from jaxvg.modules.layers import LayerNorm

BERT_LN_EPS = 1e-12


def inverse_sigmoid(x: jax.Array, eps: float = 1e-5) -> jax.Array:
  """log(x / (1 − x)) with x clamped to [0, 1] and both terms to ≥ eps (Deformable DETR)."""
  x = jnp.clip(x, 0.0, 1.0)
  return jnp.log(jnp.maximum(x, eps) / jnp.maximum(1.0 - x, eps))


def dense(features: int, name: str | None = None) -> nn.Dense:
  return nn.Dense(features, kernel_init=nn.initializers.xavier_uniform(), name=name)


def post_norm_ffn(x: jax.Array, dims: int, ffn_dims: int, drop: nn.Dropout, norm: str
                  ) -> jax.Array:
  """norm(x + drop(linear2(drop(relu(linear1(x)))))), the post-norm transformer FFN. Called
  inside a compact method, its layers become the caller's `linear1`, `linear2` and `norm`."""
  hidden = drop(nn.relu(dense(ffn_dims, 'linear1')(x)))
  return LayerNorm(name=norm)(x + drop(dense(dims, 'linear2')(hidden)))


class MLP(nn.Module):
  """DETR's MLP: Linear → ReLU → … → Linear, as `layers_i`.

  The official MLP applies its dropout after EVERY layer, the output logits included
  (`dropout_logits`, on by default to match); off, it drops hidden activations only."""
  hidden: int
  out: int
  layers: int
  dropout: float = 0.0
  dropout_logits: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
    for i in range(self.layers):
      last = i == self.layers - 1
      x = dense(self.out if last else self.hidden, f'layers_{i}')(x)
      if not last:
        x = nn.relu(x)
      if self.dropout and (self.dropout_logits or not last):
        x = nn.Dropout(self.dropout, deterministic=deterministic)(x)
    return x


class BertCrossLayer(nn.Module):
  """BertLayer_Cross: queries attend to a masked set of context vectors, then a GELU
  intermediate (width = hidden) and output with residual LayerNorms (eps 1e-12)."""
  dims: int
  heads: int = 8
  dropout: float = 0.1

  @nn.compact
  def __call__(self, q: jax.Array, context: jax.Array, context_mask: jax.Array,
               deterministic: bool = True) -> jax.Array:
    """q (B, T, C), context (B, K, C), context_mask (B, K) bool -> (B, T, C)."""
    drop = nn.Dropout(self.dropout, deterministic=deterministic)
    att = dot_product_attention(dense(self.dims, 'attention_self_query')(q),
                                dense(self.dims, 'attention_self_key')(context),
                                dense(self.dims, 'attention_self_value')(context), self.heads,
                                context_mask, drop=drop)
    att = LayerNorm(BERT_LN_EPS, name='attention_output_LayerNorm')(
        drop(dense(self.dims, 'attention_output_dense')(att)) + q)
    hidden = nn.gelu(dense(self.dims, 'hidden_intermediate_dense')(att), approximate=False)
    return LayerNorm(BERT_LN_EPS, name='output_LayerNorm')(
        drop(dense(self.dims, 'output_dense')(hidden)) + att)


class AnchorDecoderLayer(nn.Module):
  """CG-STVG's PosDecoderLayer (FROM_SCRATCH cross-attention), post-norm.

  `first` layers add the anchor position to the cross-attention query and keys
  (`ca_qpos_proj`); `with_context` layers own the context cross layer `ca2`.
  """
  dims: int
  heads: int
  ffn_dims: int
  dropout: float
  first: bool
  with_context: bool

  @nn.compact
  def __call__(self, tgt: jax.Array, query_pos: jax.Array, time_embed: jax.Array,
               sine_embed: jax.Array, frame_mask: jax.Array, memory: jax.Array,
               memory_pos: jax.Array, memory_mask: jax.Array, context: jax.Array | None,
               context_mask: jax.Array | None, deterministic: bool = True) -> jax.Array:
    """tgt/query_pos/time_embed/sine_embed (B, T, C), frame_mask (B, T), memory/memory_pos
    (B, T, N, C), memory_mask (B, T, N), context (B, K, C) + mask (B, K) -> (B, T, C)."""
    drop = nn.Dropout(self.dropout, deterministic=deterministic)
    p = lambda name: dense(self.dims, name)  # noqa: E731
    # Self-attention across the frames of a video.
    q = p('sa_qcontent_proj')(tgt) + p('sa_qtime_proj')(time_embed) + p('sa_qpos_proj')(query_pos)
    k = p('sa_kcontent_proj')(tgt) + p('sa_ktime_proj')(time_embed) + p('sa_kpos_proj')(query_pos)
    v = p('sa_v_proj')(tgt)
    tgt2 = TorchMultiheadAttention(self.dims, self.heads, self.dropout, name='self_attn')(
        q, k, v, frame_mask, deterministic)
    tgt = LayerNorm(name='norm1')(tgt + drop(tgt2))
    if self.with_context:
      with_ctx = BertCrossLayer(self.dims, name='ca2')(tgt, context, context_mask, deterministic)
      tgt = jnp.where(context_mask.any(-1)[:, None, None], with_ctx, tgt)
    # Frame-aligned cross-attention: per head, [content ; sine anchor] against [content ; pos].
    q = p('ca_qcontent_proj')(tgt)
    k = p('ca_kcontent_proj')(memory)
    k_pos = jnp.broadcast_to(p('ca_kpos_proj')(memory_pos), k.shape)
    if self.first:
      q = q + p('ca_qpos_proj')(query_pos)
      k = k + k_pos
    sine = p('ca_qpos_sine_proj')(sine_embed)
    heads = lambda x: x.reshape(x.shape[:-1] + (self.heads, -1))  # noqa: E731
    q = jnp.concatenate([heads(q), heads(sine)], -1).reshape(q.shape[:-1] + (2 * self.dims,))
    k = jnp.concatenate([heads(k), heads(k_pos)], -1).reshape(k.shape[:-1] + (2 * self.dims,))
    v = p('ca_v_proj')(memory)
    tgt2 = dot_product_attention(q[:, :, None], k, v, self.heads, memory_mask, drop=drop)[:, :, 0]
    tgt2 = p('cross_attn_out_proj')(tgt2)
    tgt = LayerNorm(name='norm3')(tgt + drop(tgt2))
    return post_norm_ffn(tgt, self.dims, self.ffn_dims, drop, 'norm4')
