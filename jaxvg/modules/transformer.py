"""Transformer decoder layer: post-norm (nncore TransformerDecoderLayer, pre_norm=False) or
pre-norm."""
from __future__ import annotations

import jax
from flax import linen as nn

from jaxvg.modules import init
from jaxvg.modules.attention import MultiHeadAttention
from jaxvg.modules.droppath import DropPath
from jaxvg.modules.layers import LayerNorm


class FeedForward(nn.Module):
  """Linear(C -> ratio*C) -> ReLU -> Linear(ratio*C -> C), He-normal (fan_out) init, zero bias."""
  dims: int
  ratio: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fc = lambda n, name: nn.Dense(n, kernel_init=init.kaiming_normal_fan_out,  # noqa: E731
                                  bias_init=nn.initializers.zeros, name=name)
    return fc(self.dims, 'fc1')(nn.relu(fc(self.dims * self.ratio, 'fc0')(x)))


class DecoderLayer(nn.Module):
  """Cross-attention -> self-attention -> FFN, each `x = LN(x + DropPath(f(x)))` (post-norm),
  or with `pre_norm` `x = x + DropPath(f(LN(x)))`: the residual stream keeps what the input
  held, whatever a sub-layer adds to every position alike (the same parameters either way).

  The positional encoding is added to queries (and self-attention keys), never to values or to
  the memory, as in nncore.
  """
  dims: int
  heads: int
  ffn_ratio: int
  droppath: float
  pre_norm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, mem: jax.Array, pe: jax.Array, x_mask: jax.Array,
               mem_mask: jax.Array, train: bool) -> jax.Array:
    """x (B, T, C), mem (B, L, C), pe (B, T, C), masks (B, T) / (B, L) bool -> (B, T, C)."""
    drop = DropPath(self.droppath)
    cross_att = lambda y: MultiHeadAttention(self.dims, self.heads, name='cross_att')(  # noqa: E731
        y + pe, mem, mem, mem_mask)
    self_att = lambda y: MultiHeadAttention(self.dims, self.heads, name='self_att')(  # noqa: E731
        y + pe, y + pe, y, x_mask)
    ffn = FeedForward(self.dims, self.ffn_ratio, name='ffn')
    for f, norm in ((cross_att, 'cross_att_norm'), (self_att, 'self_att_norm'),
                    (ffn, 'ffn_norm')):
      if self.pre_norm:
        x = x + drop(f(LayerNorm(name=norm)(x)), not train)
      else:
        x = LayerNorm(name=norm)(x + drop(f(x), not train))
    return x
