"""Dense, Conv1d and LayerNorm with PyTorch defaults (init, eps), the building blocks of ports."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxvg.modules import init

LN_EPS = 1e-5  # torch.nn.LayerNorm default (Flax's is 1e-6).


def layer_norm(name: str | None = None) -> nn.LayerNorm:
  """LayerNorm with the PyTorch epsilon."""
  return nn.LayerNorm(epsilon=LN_EPS, name=name)


def dense(features: int, fan_in: int, *, use_bias: bool = True,
          name: str | None = None) -> nn.Dense:
  """nn.Linear(fan_in, features) with PyTorch's default U(±1/sqrt(fan_in)) weight and bias."""
  return nn.Dense(features, use_bias=use_bias, kernel_init=init.torch_kernel_init,
                  bias_init=init.torch_bias_init(fan_in), name=name)


def conv1d(features: int, in_features: int, kernel_size: int, *, stride: int = 1,
           padding: int = 0, name: str | None = None) -> nn.Conv:
  """nn.Conv1d on channels-last (B, T, C) inputs; kernel (k, in, out), PyTorch default init."""
  return nn.Conv(features, kernel_size=(kernel_size,), strides=(stride,),
                 padding=[(padding, padding)], kernel_init=init.torch_kernel_init,
                 bias_init=init.torch_bias_init(in_features * kernel_size), name=name)


def cosine_similarity(a: jax.Array, b: jax.Array, eps: float = 1e-8) -> jax.Array:
  """torch.nn.functional.cosine_similarity along the last axis (broadcasting)."""
  norm = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
  return (a * b).sum(-1) / jnp.maximum(norm, eps)
