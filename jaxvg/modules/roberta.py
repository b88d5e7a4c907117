"""RoBERTa encoder (Hugging Face `RobertaModel` layout, post-norm BERT layers): last hidden
states for a padded batch of token ids. Parameter names follow the Hugging Face keys."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxvg.modules.attention import dot_product_attention
from jaxvg.modules.layers import LayerNorm


@dataclasses.dataclass(frozen=True)
class RobertaArch:
  vocab_size: int = 50265
  hidden: int = 768
  layers: int = 12
  heads: int = 12
  intermediate: int = 3072
  max_positions: int = 514
  type_vocab_size: int = 1
  pad_token_id: int = 1
  layer_norm_eps: float = 1e-5
  dropout: float = 0.1


def _dense(features: int, name: str) -> nn.Dense:
  return nn.Dense(features, kernel_init=nn.initializers.normal(0.02), name=name)


class RobertaLayer(nn.Module):
  arch: RobertaArch

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, deterministic: bool) -> jax.Array:
    a = self.arch
    ln = lambda name: LayerNorm(a.layer_norm_eps, name=name)  # noqa: E731
    drop = nn.Dropout(a.dropout, deterministic=deterministic)
    q, k, v = (_dense(a.hidden, f'attention_self_{n}')(x) for n in ('query', 'key', 'value'))
    h = dot_product_attention(q, k, v, a.heads, mask, drop=drop)
    x = ln('attention_output_LayerNorm')(x + drop(_dense(a.hidden, 'attention_output_dense')(h)))
    h = nn.gelu(_dense(a.intermediate, 'intermediate_dense')(x), approximate=False)
    return ln('output_LayerNorm')(x + drop(_dense(a.hidden, 'output_dense')(h)))


class Roberta(nn.Module):
  """ids (B, L) int, mask (B, L) bool -> last_hidden_state (B, L, hidden). No pooler: CG-STVG
  discards the pooled output."""
  arch: RobertaArch = RobertaArch()

  @nn.compact
  def __call__(self, ids: jax.Array, mask: jax.Array, deterministic: bool = True) -> jax.Array:
    a = self.arch
    init = nn.initializers.normal(0.02)
    embed = lambda n, name: nn.Embed(n, a.hidden, embedding_init=init, name=name)  # noqa: E731
    # HF create_position_ids_from_input_ids: padding_idx + running count of real tokens.
    positions = jnp.where(mask, jnp.cumsum(mask, axis=1) + a.pad_token_id, a.pad_token_id)
    x = (embed(a.vocab_size, 'embeddings_word_embeddings')(ids)
         + embed(a.max_positions, 'embeddings_position_embeddings')(positions)
         + embed(a.type_vocab_size, 'embeddings_token_type_embeddings')(jnp.zeros_like(ids)))
    x = LayerNorm(a.layer_norm_eps, name="embeddings_LayerNorm")(x)
    x = nn.Dropout(a.dropout, deterministic=deterministic)(x)
    for i in range(a.layers):
      x = RobertaLayer(a, name=f'encoder_layer_{i}')(x, mask, deterministic)
    return x
