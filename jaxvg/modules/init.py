"""PyTorch-style initialisers, so a fresh jaxvg model starts where the official one does.

Flax kernels are (in, out) for Dense and (k, in, out) for Conv, so fan_in = prod(shape[:-1]).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import linen as nn


def torch_kernel_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
  """PyTorch Linear/Conv default: kaiming_uniform(a=sqrt(5)) == U(±1/sqrt(fan_in))."""
  fan_in = math.prod(shape[:-1])
  bound = 1.0 / math.sqrt(fan_in)
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def torch_bias_init(fan_in: int) -> nn.initializers.Initializer:
  """PyTorch Linear/Conv default bias: U(±1/sqrt(fan_in)) of the layer's weight."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


# nncore MultiHeadAttention: xavier_uniform weights, zero bias (same fans as torch for Linear).
xavier_uniform = nn.initializers.xavier_uniform()
# nncore FFN: kaiming_normal_(mode='fan_out', nonlinearity='leaky_relu', a=0): N(0, 2/fan_out).
kaiming_normal_fan_out = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
