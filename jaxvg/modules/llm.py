"""A causal decoder LM (Llama / Qwen2 family) that can read out attention rows.

One code path covers Llama (MHA or GQA, no biases) and Qwen2 (q/k/v biases, tied head for small
sizes). Submodule names follow Hugging Face (`layers_3/self_attn/q_proj`, `mlp/gate_proj`,
`input_layernorm`, ...) so weight conversion is a rename plus a transpose.

Attention read-out: the zero-shot grounder needs, for a few query rows (template tokens at the end
of the prompt) and a few layers, the softmax probabilities over a contiguous block of key columns
(the visual tokens). Each chosen layer recomputes just those rows (R×S logits, not S×S), so no full
L×H×S×S map is ever stored, and the main attention path stays a fused `dot_product_attention`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
  """Sizes and numerics of a Llama/Qwen2 decoder (Hugging Face `config.json` names in comments)."""
  vocab_size: int
  hidden_size: int
  intermediate_size: int
  num_layers: int  # num_hidden_layers
  num_heads: int  # num_attention_heads
  num_kv_heads: int  # num_key_value_heads; query head h reads KV head h // (heads // kv_heads)
  head_dim: int | None = None  # hidden_size // num_heads when None
  rope_theta: float = 10000.0
  rope_linear_scale: float = 1.0  # rope_scaling {"type": "linear", "factor": f}: positions / f
  rms_norm_eps: float = 1e-6
  qkv_bias: bool = False  # Qwen2: True
  tie_word_embeddings: bool = False

  @property
  def dims_per_head(self) -> int:
    return self.head_dim or self.hidden_size // self.num_heads


@dataclasses.dataclass(frozen=True)
class AttentionReadout:
  """Which attention probabilities to return (static): chosen layers, key columns [start, stop)."""
  layers: tuple[int, ...]
  col_start: int
  col_stop: int


class RMSNorm(nn.Module):
  """x / rms(x) computed in f32, cast back to the input dtype, then times the weight (HF order)."""
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    weight = self.param('weight', nn.initializers.ones, (x.shape[-1],))
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return weight.astype(x.dtype) * normed.astype(x.dtype)


def rope_cos_sin(positions: jax.Array, head_dim: int, theta: float,
                 linear_scale: float = 1.0) -> tuple[jax.Array, jax.Array]:
  """(..., S) int positions -> cos, sin (..., S, head_dim) in f32; split-half layout."""
  inv_freq = 1.0 / theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
  angles = (positions.astype(jnp.float32) / linear_scale)[..., None] * inv_freq
  angles = jnp.concatenate([angles, angles], axis=-1)
  return jnp.cos(angles), jnp.sin(angles)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
  """x (B, S, H, hd); cos/sin (B, S, hd): x·cos + rotate_half(x)·sin (cos/sin cast to x's dtype)."""
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
  cos, sin = cos[:, :, None].astype(x.dtype), sin[:, :, None].astype(x.dtype)
  return x * cos + rotated * sin


def _causal_bias(query_pos: jax.Array, key_len: int, dtype: Dtype) -> jax.Array:
  """(B, R) query positions -> (B, 1, R, S) additive mask hiding keys after each query."""
  keys = jnp.arange(key_len)
  return jnp.where(keys[None, None, :] <= query_pos[:, :, None], 0.0,
                   jnp.finfo(dtype).min)[:, None].astype(dtype)


class Attention(nn.Module):
  """Grouped-query causal self-attention with RoPE."""
  config: DecoderConfig
  dtype: Dtype = jnp.float32
  readout_cols: tuple[int, int] | None = None  # key columns [start, stop) of the read-out

  @nn.compact
  def __call__(self, x: jax.Array, cos: jax.Array, sin: jax.Array,
               rows: jax.Array | None = None):
    """x (B, S, D) -> (B, S, D), and the read-out probs (B, H, R, stop - start) or None."""
    c = self.config
    hd = c.dims_per_head
    def dense(n, bias, name):
      return nn.Dense(n, use_bias=bias, dtype=self.dtype, name=name)
    b, s, _ = x.shape
    q = dense(c.num_heads * hd, c.qkv_bias, 'q_proj')(x).reshape(b, s, c.num_heads, hd)
    k = dense(c.num_kv_heads * hd, c.qkv_bias, 'k_proj')(x).reshape(b, s, c.num_kv_heads, hd)
    v = dense(c.num_kv_heads * hd, c.qkv_bias, 'v_proj')(x).reshape(b, s, c.num_kv_heads, hd)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    out = jax.nn.dot_product_attention(q, k, v, is_causal=True)
    out = dense(c.hidden_size, False, 'o_proj')(out.reshape(b, s, c.num_heads * hd))
    if self.readout_cols is None:
      return out, None
    return out, self._probs_rows(q, k, rows, *self.readout_cols)

  def _probs_rows(self, q: jax.Array, k: jax.Array, rows: jax.Array, col_start: int,
                  col_stop: int) -> jax.Array:
    """Softmax probabilities (f32) of query rows (B, R) over all keys, sliced to [start, stop)."""
    c = self.config
    q_rows = jnp.take_along_axis(q, rows[:, :, None, None], axis=1)  # (B, R, H, hd)
    q_rows = q_rows.reshape(q_rows.shape[:2] + (c.num_kv_heads, c.num_heads // c.num_kv_heads, -1))
    logits = jnp.einsum('brkgd,bskd->bkgrs', q_rows, k).astype(jnp.float32)
    logits = logits.reshape(logits.shape[0], c.num_heads, *logits.shape[3:])
    logits = logits * c.dims_per_head ** -0.5 + _causal_bias(rows, k.shape[1], jnp.float32)
    return jax.nn.softmax(logits, axis=-1)[..., col_start:col_stop]


class MLP(nn.Module):
  """SwiGLU: down(silu(gate(x)) * up(x)), no biases."""
  config: DecoderConfig
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = self.config
    dense = lambda n, name: nn.Dense(n, use_bias=False, dtype=self.dtype, name=name)  # noqa: E731
    gate = nn.silu(dense(c.intermediate_size, 'gate_proj')(x))
    h = gate * dense(c.intermediate_size, 'up_proj')(x)
    return dense(c.hidden_size, 'down_proj')(h)


class DecoderLayer(nn.Module):
  """Pre-norm block: x + attn(norm(x)); x + mlp(norm(x))."""
  config: DecoderConfig
  dtype: Dtype = jnp.float32
  readout_cols: tuple[int, int] | None = None

  @nn.compact
  def __call__(self, x, cos, sin, rows=None):
    c = self.config
    h, probs = Attention(c, self.dtype, self.readout_cols, name='self_attn')(
        RMSNorm(c.rms_norm_eps, name='input_layernorm')(x), cos, sin, rows)
    x = x + h
    h = RMSNorm(c.rms_norm_eps, name='post_attention_layernorm')(x)
    x = x + MLP(c, self.dtype, name='mlp')(h)
    return x, probs


class CausalDecoder(nn.Module):
  """Token embedding, decoder stack, final norm and LM head; positions 0..S-1.

  Right padding is exact under the causal mask (no real token sees a later one), so callers pad
  sequences to a bucket length and point `logit_positions` / read-out rows at the real tokens.
  """
  config: DecoderConfig
  dtype: Dtype = jnp.float32
  readout: AttentionReadout | None = None
  remat: bool = False  # recompute each block in the backward pass (LRA on long sequences)

  def setup(self):
    c = self.config
    self.embed_tokens = nn.Embed(c.vocab_size, c.hidden_size, dtype=self.dtype,
                                 embedding_init=nn.initializers.normal(0.02))
    block = nn.remat(DecoderLayer) if self.remat else DecoderLayer
    r = self.readout
    def cols(i):
      return (r.col_start, r.col_stop) if r is not None and i in r.layers else None
    self.layers = [block(c, self.dtype, cols(i), name=f'layers_{i}') for i in range(c.num_layers)]
    self.norm = RMSNorm(c.rms_norm_eps)
    if not c.tie_word_embeddings:
      self.lm_head = nn.Dense(c.vocab_size, use_bias=False, dtype=self.dtype)

  def embed(self, ids: jax.Array) -> jax.Array:
    return self.embed_tokens(ids)

  def __call__(self, embeds: jax.Array, logit_positions: jax.Array,
               readout_rows: jax.Array | None = None) -> dict[str, jax.Array]:
    """Runs the prefill on input embeddings.

    Args:
      embeds: (B, S, D) input embeddings (text and spliced visual tokens).
      logit_positions: (B, K) positions whose next-token logits are returned.
      readout_rows: (B, R) query positions of the read-out (needed when `readout` is set).
    Returns:
      {'logits': (B, K, V) f32} plus {'attention': (len(layers), B, H, R, C) f32} with a readout.
    """
    c = self.config
    positions = jnp.broadcast_to(jnp.arange(embeds.shape[1]), embeds.shape[:2])
    cos, sin = rope_cos_sin(positions, c.dims_per_head, c.rope_theta, c.rope_linear_scale)
    x = embeds.astype(self.dtype)
    maps = {}
    for i, layer in enumerate(self.layers):
      x, probs = layer(x, cos, sin, readout_rows)
      if probs is not None:
        maps[i] = probs
    hidden = jnp.take_along_axis(x, logit_positions[:, :, None], axis=1)
    hidden = self.norm(hidden)
    if c.tie_word_embeddings:
      logits = self.embed_tokens.attend(hidden)
    else:
      logits = self.lm_head(hidden)
    out = {'logits': logits.astype(jnp.float32)}
    if self.readout is not None:
      out['attention'] = jnp.stack([maps[i] for i in self.readout.layers])
    return out


def select_layers(layers: Sequence[int] | slice, num_layers: int) -> tuple[int, ...]:
  """A layer list or a Python slice (the official `[-26:-6]`) -> sorted absolute indices."""
  if isinstance(layers, slice):
    return tuple(range(num_layers)[layers])
  return tuple(sorted({i % num_layers for i in layers}))
