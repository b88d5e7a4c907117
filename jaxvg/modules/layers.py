"""Dense, Conv1d and LayerNorm with PyTorch defaults (init, eps), the building blocks of ports."""
from __future__ import annotations

import math

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


def _dyadic_bits(rate: float, max_bits: int = 16) -> int | None:
  """Smallest m in 1, 2, 4, 8, 16 with rate·2^m an integer, or None (rate is not dyadic)."""
  for m in (1, 2, 4, 8, max_bits):
    if float(rate * 2**m).is_integer():
      return m
  return None


def dropout_keep_mask(rng: jax.Array, rate: float, shape: tuple[int, ...]) -> jax.Array:
  """Bernoulli(1 − rate) keep mask of `shape`, bool.

  For a dyadic rate (0.5, 0.25, …) each element takes only m random bits (m = 1 at rate 0.5)
  unpacked from 32-bit words, instead of one 32-bit uniform: the same distribution, exactly, at
  up to 32× less random-number generation, which dominated the R²-Tuning step on CPU (the input
  MLP drops out every token of every layer). Other rates fall back to `jax.random.bernoulli`.
  """
  bits = _dyadic_bits(rate)
  if bits is None:
    return jax.random.bernoulli(rng, 1.0 - rate, shape)
  n, per_word = math.prod(shape), 32 // bits
  words = jax.random.bits(rng, (-(-n // per_word),), jnp.uint32)
  shifts = jnp.arange(per_word, dtype=jnp.uint32) * bits
  values = (words[:, None] >> shifts) & jnp.uint32(2**bits - 1)  # uniform on [0, 2^bits)
  return (values.reshape(-1)[:n] >= int(rate * 2**bits)).reshape(shape)


class Dropout(nn.Module):
  """nn.Dropout (same 'dropout' rng stream, same scaling) with a cheaper mask for dyadic rates."""
  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    if deterministic or self.rate == 0.0:
      return x
    if self.rate == 1.0:
      return jnp.zeros_like(x)
    keep = dropout_keep_mask(self.make_rng('dropout'), self.rate, x.shape)
    return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros_like(x))


def cosine_similarity(a: jax.Array, b: jax.Array, eps: float = 1e-8) -> jax.Array:
  """torch.nn.functional.cosine_similarity along the last axis (broadcasting)."""
  norm = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
  return (a * b).sum(-1) / jnp.maximum(norm, eps)
