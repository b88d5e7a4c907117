"""Linear, Conv1d, LayerNorm and Dropout with PyTorch defaults (init, eps, scaling): the building
blocks of ports."""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxvg.modules import init

LN_EPS = 1e-5  # torch.nn.LayerNorm default (Flax's is 1e-6).


def normalise_parts(parts: Sequence[jax.Array], epsilon: float = LN_EPS
                    ) -> tuple[jax.Array, jax.Array, list[jax.Array]]:
  """Row mean, 1/std (two-pass, at least fp32) over the concatenation of `parts` along the last
  axis, and each part normalised by them; parts broadcast against each other."""
  parts32 = [p.astype(jnp.promote_types(p.dtype, jnp.float32)) for p in parts]
  total = sum(p.shape[-1] for p in parts)
  mean = sum(p.sum(-1, keepdims=True) for p in parts32) / total
  var = sum(jnp.square(p - mean).sum(-1, keepdims=True) for p in parts32) / total
  inv = jax.lax.rsqrt(var + epsilon)
  return mean, inv, [(p - mean) * inv for p in parts32]


class LayerNorm(nn.Module):
  """nn.LayerNorm with PyTorch's epsilon and two-pass variance; `x` may be a list of parts.

  Parts are normalised as their concatenation along the last axis and returned as parts, with
  the parameters of the concatenated norm ('scale', 'bias' (ΣD,)), but the concatenation is
  never built: R²-Tuning's video input is 768 CLIP features + 2 TEF per token, and
  concatenating copies every token of every layer (368 MB per train step at QVHighlights
  shapes). Parts broadcast against each other (the TEF is per clip, the features per token).
  Statistics are computed in fp32.
  """
  epsilon: float = LN_EPS

  def __call__(self, x: jax.Array | Sequence[jax.Array]) -> jax.Array | list[jax.Array]:
    parts = list(x) if isinstance(x, (list, tuple)) else [x]
    dims = [p.shape[-1] for p in parts]
    total = sum(dims)
    scale, bias = self.affine(total)
    dtype = jnp.result_type(*parts, scale)
    _, _, normed = normalise_parts(parts, self.epsilon)
    offsets = [0, *itertools.accumulate(dims)]
    out = [(n * scale[lo:hi] + bias[lo:hi]).astype(dtype)
           for n, lo, hi in zip(normed, offsets[:-1], offsets[1:])]
    return out if isinstance(x, (list, tuple)) else out[0]

  @nn.compact
  def affine(self, features: int) -> tuple[jax.Array, jax.Array]:
    """The ('scale', 'bias') parameters, (features,) each: for fused ops that normalise
    themselves (`jaxvg.projects.r2tuning.fused`)."""
    return (self.param('scale', nn.initializers.ones, (features,)),
            self.param('bias', nn.initializers.zeros, (features,)))


class Linear(nn.Module):
  """nn.Linear(fan_in, features): PyTorch's U(±1/sqrt(fan_in)) init, Flax's (in, out) kernel.

  `x` may be a list of parts taken as their concatenation (Σ part_i · kernel_i), so a caller
  never has to build the concatenated input. `dual` turns a functional on the output into one on
  the input, key·f(x) = (key·Wᵀ)·x + key·b, which lets a product against every output row be
  computed on the fewer `key` rows instead.
  """
  features: int
  fan_in: int
  use_bias: bool = True

  def setup(self):
    self.kernel = self.param('kernel', init.torch_kernel_init, (self.fan_in, self.features))
    self.bias = (self.param('bias', init.torch_bias_init(self.fan_in), (self.features,))
                 if self.use_bias else None)

  def __call__(self, x: jax.Array | Sequence[jax.Array]) -> jax.Array:
    parts = list(x) if isinstance(x, (list, tuple)) else [x]
    dtype = jnp.result_type(*parts, self.kernel)
    offsets = [0, *itertools.accumulate(p.shape[-1] for p in parts)]
    if offsets[-1] != self.fan_in:
      raise ValueError(f'Linear expects {self.fan_in} input features, got {offsets[-1]}')
    out = sum(p.astype(dtype) @ self.kernel[lo:hi].astype(dtype)
              for p, lo, hi in zip(parts, offsets[:-1], offsets[1:]))
    return out if self.bias is None else out + self.bias.astype(dtype)

  def dual(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """key (…, features) -> (key·Wᵀ (…, fan_in), key·b (…)), so key·f(x) = (key·Wᵀ)·x + key·b."""
    dtype = jnp.result_type(key, self.kernel)
    key = key.astype(dtype)
    offset = (jnp.zeros(key.shape[:-1], dtype) if self.bias is None
              else key @ self.bias.astype(dtype))
    return key @ self.kernel.astype(dtype).T, offset


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


def apply_keep_mask(x: jax.Array, keep: jax.Array, rate: float) -> jax.Array:
  """Inverted dropout with a given keep mask: x / (1 − rate) where kept, 0 elsewhere. It is its
  own backward pass (the same mask and scale apply to the gradient)."""
  if rate == 1.0:
    return jnp.zeros_like(x)
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


class Dropout(nn.Module):
  """nn.Dropout (same 'dropout' rng stream, same scaling) with a cheaper mask for dyadic rates.

  `keep_mask` draws the mask alone, for fused ops that apply it themselves
  (`jaxvg.projects.r2tuning.fused`)."""
  rate: float

  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    keep = self.keep_mask(x.shape, deterministic)
    return x if keep is None else apply_keep_mask(x, keep, self.rate)

  def keep_mask(self, shape: tuple[int, ...], deterministic: bool) -> jax.Array | None:
    """A bool keep mask of `shape`, or None when nothing is dropped."""
    if deterministic or self.rate == 0.0:
      return None
    return dropout_keep_mask(self.make_rng('dropout'), self.rate, shape)


def cosine_similarity(a: jax.Array, b: jax.Array, eps: float = 1e-8) -> jax.Array:
  """torch.nn.functional.cosine_similarity along the last axis (broadcasting)."""
  norm = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
  return (a * b).sum(-1) / jnp.maximum(norm, eps)
