"""Post-norm transformer decoder layer (nncore TransformerDecoderLayer, pre_norm=False)."""
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
  """Cross-attention -> self-attention -> FFN, each `x = LN(x + DropPath(f(x)))`.

  The positional encoding is added to queries (and self-attention keys), never to values or to
  the memory, as in nncore.
  """
  dims: int
  heads: int
  ffn_ratio: int
  droppath: float

  @nn.compact
  def __call__(self, x: jax.Array, mem: jax.Array, pe: jax.Array, x_mask: jax.Array,
               mem_mask: jax.Array, train: bool) -> jax.Array:
    """x (B, T, C), mem (B, L, C), pe (B, T, C), masks (B, T) / (B, L) bool -> (B, T, C)."""
    drop = DropPath(self.droppath)
    d = MultiHeadAttention(self.dims, self.heads, name='cross_att')(x + pe, mem, mem, mem_mask)
    x = LayerNorm(name='cross_att_norm')(x + drop(d, not train))
    q = x + pe
    d = MultiHeadAttention(self.dims, self.heads, name='self_att')(q, q, x, x_mask)
    x = LayerNorm(name='self_att_norm')(x + drop(d, not train))
    d = FeedForward(self.dims, self.ffn_ratio, name='ffn')(x)
    return LayerNorm(name='ffn_norm')(x + drop(d, not train))
