"""LN → Dropout → Linear and ReLU → LN → Dropout as single ops with hand-written VJPs.

R²-Tuning's video input map runs them on every token of every CLIP layer (4 × 30 000 × 770 per
train step at QVHighlights shapes), the largest tensors of the step. Differentiated
automatically, XLA keeps a float32 copy of the features, the normalised input, the dropout
backward and the input-gradient tensor, and passes over each separately. Written by hand, the
backward pass reads what it needs once: the saved GEMM input for the weight gradient, the
input-gradient tensor fused with the recomputed normalised features (from the features as
they came, e.g. float16) into the LayerNorm's parameter gradients. The features' own gradient
is exact too, and XLA drops it when nothing uses it (frozen features).

The same numbers as the compositions of `jaxvg.modules.layers` they replace (tested to fp32
rounding, values and every gradient); products accumulate in fp32 in every compute dtype.
"""
from __future__ import annotations

import functools
import itertools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxvg.modules.layers import apply_keep_mask, normalise_parts

Parts = Sequence[jax.Array]


def _split(vector: jax.Array, dims: Sequence[int]) -> list[jax.Array]:
  offsets = [0, *itertools.accumulate(dims)]
  return [vector[lo:hi] for lo, hi in zip(offsets[:-1], offsets[1:])]


def _matmul_parts(parts: Parts, kernels: Parts) -> jax.Array:
  """Σ part_i · kernel_i accumulated in fp32 (bf16 products on the CPU's fast path, as a TPU's
  MXU does anyway); parts only a few features wide are multiply-adds, not GEMMs."""
  out = 0.0
  for p, k in zip(parts, kernels):
    if p.shape[-1] <= 4:
      p, k = p.astype(jnp.float32), k.astype(jnp.float32)
      out = out + sum(p[..., i:i + 1] * k[i] for i in range(p.shape[-1]))
    else:
      out = out + jnp.matmul(p, k, preferred_element_type=jnp.float32)
  return out


def _rows_product(x: jax.Array, rows: jax.Array) -> jax.Array:
  """xᵀ·rows over all leading axes of x (broadcast to rows' leading shape), fp32-accumulated."""
  x = jnp.broadcast_to(x, rows.shape[:-1] + x.shape[-1:])
  return jax.lax.dot_general(x.reshape(-1, x.shape[-1]), rows.reshape(-1, rows.shape[-1]),
                             (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)


def _sum_to(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Sum a broadcast result back to an operand's shape."""
  axes = tuple(i for i, (a, b) in enumerate(zip(x.shape, shape)) if b == 1 and a != 1)
  return x.sum(axes, keepdims=True) if axes else x


def _drop(xs: Parts, keep_masks: Sequence[jax.Array | None] | None, rate: float) -> list:
  """Each part through its keep mask (None: nothing dropped)."""
  masks = [None] * len(xs) if keep_masks is None else keep_masks
  return [x if m is None else apply_keep_mask(x, m, rate) for x, m in zip(xs, masks)]


def _normalisation_grads(d_normed: Parts, normed: Parts, inv: jax.Array) -> list[jax.Array]:
  """Gradients through x ↦ (x − mean)·inv over the concatenated parts, given those at the
  normalised parts: inv · (dn − mean(dn) − n · mean(dn · n))."""
  total = sum(n.shape[-1] for n in normed)
  mean_dn = sum(dn.sum(-1, keepdims=True) for dn in d_normed) / total
  mean_dn_n = sum((dn * n).sum(-1, keepdims=True) for dn, n in zip(d_normed, normed)) / total
  return [inv * (dn - mean_dn - n * mean_dn_n) for dn, n in zip(d_normed, normed)]


def _forward(parts, keep_masks, scale, bias, kernel, linear_bias, rate, epsilon):
  dims = [p.shape[-1] for p in parts]
  mean, inv, normed = normalise_parts(parts, epsilon)
  inputs = [n * g + b for n, g, b in zip(normed, _split(scale, dims), _split(bias, dims))]
  inputs = _drop(inputs, keep_masks, rate)
  inputs = [x.astype(kernel.dtype) for x in inputs]
  out = _matmul_parts(inputs, _split(kernel, dims)) + linear_bias.astype(jnp.float32)
  return out.astype(kernel.dtype), (mean, inv, inputs)


def norm_dropout_linear(parts: Parts, keep_masks: Parts | None, scale: jax.Array,
                        bias: jax.Array, kernel: jax.Array, linear_bias: jax.Array, *,
                        rate: float, epsilon: float) -> jax.Array:
  """Linear(Dropout(LayerNorm(concat(parts)))) without building the concatenation.

  parts: (…, D_i) arrays that broadcast against each other (R²: features (B,T,P,768) and the
  TEF (B,T,1,2)); keep_masks: a bool mask of the broadcast shape per part (None for a part, or
  for all, drops nothing);
  scale, bias (ΣD_i,); kernel (ΣD_i, F); linear_bias (F,). Statistics are fp32; the products
  take their inputs in the kernel's dtype (bf16 compute: bf16 GEMMs) and accumulate in fp32;
  the output has the kernel's dtype.
  """
  return _norm_dropout_linear(tuple(parts), None if keep_masks is None else tuple(keep_masks),
                              scale, bias, kernel, linear_bias, rate, epsilon)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _norm_dropout_linear(parts, keep_masks, scale, bias, kernel, linear_bias, rate, epsilon):
  return _forward(parts, keep_masks, scale, bias, kernel, linear_bias, rate, epsilon)[0]


def _fwd(parts, keep_masks, scale, bias, kernel, linear_bias, rate, epsilon):
  out, (mean, inv, inputs) = _forward(parts, keep_masks, scale, bias, kernel, linear_bias, rate,
                                      epsilon)
  # Saved: the raw parts (already in memory, in their own dtype), per-row statistics, the masks
  # and the Linear's input; not fp32 copies of the parts, nor the normalised parts.
  return out, (parts, keep_masks, scale, kernel, mean, inv, inputs)


def _bwd(rate, epsilon, residuals, grad):
  del epsilon  # only the forward statistics use it
  parts, keep_masks, scale, kernel, mean, inv, inputs = residuals
  dims = [p.shape[-1] for p in parts]
  d_kernel = jnp.concatenate([_rows_product(x, grad) for x in inputs], axis=0)
  d_linear_bias = grad.astype(jnp.float32).reshape(-1, grad.shape[-1]).sum(0)
  # The gradient at the Linear's input, through dropout, meets the normalised parts (recomputed
  # from the raw parts) in the LayerNorm's parameter gradients.
  d_inputs = [jnp.matmul(grad, k.T, preferred_element_type=jnp.float32)
              for k in _split(kernel, dims)]
  d_inputs = _drop(d_inputs, keep_masks, rate)
  normed = [(p.astype(jnp.float32) - mean) * inv for p in parts]
  lead = tuple(range(grad.ndim - 1))
  d_scale = jnp.concatenate([(d * n).sum(lead) for d, n in zip(d_inputs, normed)])
  d_bias = jnp.concatenate([d.sum(lead) for d in d_inputs])
  # The parts' own gradient (XLA removes it when the parts are frozen features).
  d_normed = [d * g for d, g in zip(d_inputs, _split(scale.astype(jnp.float32), dims))]
  d_parts = tuple(_sum_to(d, p.shape).astype(p.dtype)
                  for d, p in zip(_normalisation_grads(d_normed, normed, inv), parts))
  return (d_parts, None, d_scale.astype(scale.dtype), d_bias.astype(scale.dtype),
          d_kernel.astype(kernel.dtype), d_linear_bias.astype(kernel.dtype))


_norm_dropout_linear.defvjp(_fwd, _bwd)


def relu_norm_dropout(x: jax.Array, keep_mask: jax.Array | None, scale: jax.Array,
                      bias: jax.Array, *, rate: float, epsilon: float) -> jax.Array:
  """Dropout(LayerNorm(ReLU(x))) (the middle of R²-Tuning's input maps), statistics in fp32.

  The backward pass recomputes ReLU and the normalisation from the saved x and per-row
  statistics and goes through the LayerNorm in one expression, instead of autodiff's chain of
  saved intermediates.
  """
  return _relu_norm_dropout(x, keep_mask, scale, bias, rate, epsilon)


def _relu_norm_dropout_forward(x, keep_mask, scale, bias, rate, epsilon):
  mean, inv, (normed,) = normalise_parts([jax.nn.relu(x)], epsilon)
  y = normed * scale + bias
  if keep_mask is not None:
    y = apply_keep_mask(y, keep_mask, rate)
  return y.astype(x.dtype), (mean, inv)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _relu_norm_dropout(x, keep_mask, scale, bias, rate, epsilon):
  return _relu_norm_dropout_forward(x, keep_mask, scale, bias, rate, epsilon)[0]


def _relu_norm_dropout_fwd(x, keep_mask, scale, bias, rate, epsilon):
  out, (mean, inv) = _relu_norm_dropout_forward(x, keep_mask, scale, bias, rate, epsilon)
  return out, (x, keep_mask, scale, mean, inv)


def _relu_norm_dropout_bwd(rate, epsilon, residuals, grad):
  del epsilon
  x, keep_mask, scale, mean, inv = residuals
  d_y = grad.astype(jnp.float32)
  if keep_mask is not None:
    d_y = apply_keep_mask(d_y, keep_mask, rate)
  normed = (jax.nn.relu(x).astype(jnp.float32) - mean) * inv
  lead = tuple(range(x.ndim - 1))
  d_scale = (d_y * normed).sum(lead)
  d_bias = d_y.sum(lead)
  (d_relu,) = _normalisation_grads([d_y * scale.astype(jnp.float32)], [normed], inv)
  d_x = jnp.where(x > 0, d_relu, 0.0).astype(x.dtype)
  return d_x, None, d_scale.astype(scale.dtype), d_bias.astype(scale.dtype)


_relu_norm_dropout.defvjp(_relu_norm_dropout_fwd, _relu_norm_dropout_bwd)


def masked_max(x: jax.Array, mask: jax.Array | None, axis: int) -> jax.Array:
  """max of x over `axis` among the entries where `mask` (broadcast against x) holds; 0 where
  none does. The backward pass sends the gradient to the saved first argmax, instead of
  recomputing x to find where it equals the max (what autodiff's max does, a pass over x).

  At ties autodiff splits the gradient evenly; this sends it to the first. The two agree
  wherever tied entries are the same function of the inputs (R²'s padded query tokens).
  """
  axis = axis % x.ndim
  return _masked_max(x, mask, axis, x.shape[axis])


def _masked_max_forward(x, mask, axis):
  valid = None
  if mask is not None:
    x = jnp.where(mask, x, -jnp.inf)
    mask = mask.reshape((1,) * (x.ndim - mask.ndim) + mask.shape)
    valid = jnp.any(mask, axis=axis, keepdims=True)  # from the mask: NaN and ±inf pass through
  index = jnp.argmax(x, axis=axis, keepdims=True)
  out = jnp.take_along_axis(x, index, axis=axis)
  if valid is not None:
    out = jnp.where(valid, out, 0.0)
  return jnp.squeeze(out, axis), (index.astype(jnp.int8 if x.shape[axis] < 128 else jnp.int32),
                                  valid)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _masked_max(x, mask, axis, size):
  del size  # the backward pass's
  return _masked_max_forward(x, mask, axis)[0]


def _masked_max_fwd(x, mask, axis, size):
  del size
  out, (index, valid) = _masked_max_forward(x, mask, axis)
  return out, (index, valid, mask)


def _masked_max_bwd(axis, size, residuals, grad):
  index, valid, mask = residuals
  grad = jnp.expand_dims(grad, axis)
  if valid is not None:
    grad = jnp.where(valid, grad, jnp.zeros_like(grad))
  shape = index.shape[:axis] + (size,) + index.shape[axis + 1:]
  positions = jax.lax.broadcasted_iota(index.dtype, shape, axis)
  d_mask = None if mask is None else np.zeros(mask.shape, jax.dtypes.float0)
  return jnp.where(positions == index, grad, jnp.zeros_like(grad)), d_mask


_masked_max.defvjp(_masked_max_fwd, _masked_max_bwd)
