"""The per-point trainable units: NST's Quality-Adaptive Unit and Dual-Space Reparameterization,
and the LoRA foil. Each acts on the last (channel) axis of a frozen layer's input."""
from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxvg.modules import init, nullspace

QUALITY_COLLECTION = 'nst_quality'  # sown QAU logits, for the optional BCE


class QualityAdaptiveUnit(nn.Module):
  """The logit of q ∈ [0, 1] (0 = high quality) from the input's mean and root-mean-square over
  `pool_axes` (not normalised: blur and noise show as a change of feature energy),
  broadcastable against the input. The logit is also sown into `QUALITY_COLLECTION`."""
  hidden: int
  pool_axes: Sequence[int] = ()
  init_bias: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    axes = tuple(axis % x.ndim for axis in self.pool_axes)
    if x.ndim - 1 in axes:
      raise ValueError(f'pool_axes {tuple(self.pool_axes)} include the channel axis of {x.shape}')
    x = x.astype(jnp.float32)
    mean = x.mean(axis=axes, keepdims=True)
    rms = jnp.sqrt(jnp.square(x).mean(axis=axes, keepdims=True) + 1e-12)
    hidden = nn.gelu(nn.Dense(self.hidden)(jnp.concatenate([mean, rms], axis=-1)))
    logit = nn.Dense(1, bias_init=nn.initializers.constant(self.init_bias))(hidden)
    self.sow(QUALITY_COLLECTION, 'logits', logit)
    return logit


class Generator(nn.Module):
  """d → hidden → d residual generator whose last layer starts at zero (Δ = 0 at init)."""
  hidden: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    hidden = nn.gelu(nn.Dense(self.hidden)(x))
    return nn.Dense(x.shape[-1], kernel_init=nn.initializers.zeros)(hidden)


class DualSpaceResidual(nn.Module):
  """Δ = P_N g_N(x) + q · P_R g_R(x), projections from the frozen layer's stored basis
  (`jaxvg.modules.nullspace`): `basis` when given, else this module's 'nullspace' collection."""
  hidden: int
  shared_generator: bool = False
  null_generator: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, quality: jax.Array,
               basis: Mapping[str, jax.Array] | None = None) -> jax.Array:
    x = x.astype(jnp.float32)
    row_input = Generator(self.hidden, name='row')(x)
    null_input = (Generator(self.hidden, name='null')(x)
                  if self.null_generator and not self.shared_generator else None)
    entry = self._basis() if basis is None else basis
    if entry is None:  # initialising: the basis is attached afterwards (injection.attach_nullspace)
      return jnp.zeros_like(x)
    null_of_row, row_part = nullspace.split(row_input, entry)
    delta = quality * row_part
    if self.shared_generator:
      delta = delta + null_of_row
    elif null_input is not None:
      delta = delta + nullspace.split(null_input, entry)[0]
    return delta

  def _basis(self) -> dict[str, jax.Array] | None:
    for key in ('v_null', 'v_row'):
      if self.has_variable(nullspace.COLLECTION, key):
        return {key: self.get_variable(nullspace.COLLECTION, key)}
    if self.is_initializing():
      return None
    raise ValueError(f'no null-space basis for {"/".join(self.path)}: attach one with '
                     'jaxvg.projects.nst.injection.attach_nullspace(variables, ...)')


class LoRA(nn.Module):
  """The low-rank update (alpha / rank) · B A x of a frozen layer's output; B starts at zero."""
  rank: int
  alpha: float

  @nn.compact
  def __call__(self, x: jax.Array, features: int) -> jax.Array:
    down = self.param('down', init.torch_kernel_init, (x.shape[-1], self.rank))
    up = self.param('up', nn.initializers.zeros, (self.rank, features))
    return (x @ down) @ up * (self.alpha / self.rank)
