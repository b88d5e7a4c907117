"""The jitted train and eval steps, built once per run from a task.

One `jax.jit` per step with explicit in/out shardings; the train state is donated. A task's
frozen backbone parameters are an argument, never part of the state, so they are never
differentiated nor stored in the optimiser.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from jaxvg.registry import Training
from jaxvg.train import mesh as mesh_lib
from jaxvg.train.state import TrainState

# (frozen params, batch) -> batch with features in place of raw inputs (FrozenBackbone.encode).
Encoder = Callable[[Any, dict[str, jax.Array]], dict[str, jax.Array]]

_COMPUTE_DTYPES = {'fp32': jnp.float32, 'bf16': jnp.bfloat16}


def compute_dtype(config: ml_collections.ConfigDict) -> jnp.dtype:
  try:
    return _COMPUTE_DTYPES[config.train.precision]
  except KeyError:
    raise ValueError(f'train.precision must be one of {sorted(_COMPUTE_DTYPES)}, '
                     f'got {config.train.precision!r}') from None


def _cast_floats(tree: Any, dtype: jnp.dtype) -> Any:
  return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                      tree)


def _narrow_floats(tree: Any, dtype: jnp.dtype) -> Any:
  """Floats wider than `dtype` cast down to it; narrower ones (float16 cached features) are left
  for the model to widen where it computes, not copied whole to `dtype` first."""
  return jax.tree.map(
      lambda x: (x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating)
                 and jnp.finfo(x.dtype).bits > jnp.finfo(dtype).bits else x), tree)


def apply_model(model: nn.Module, params: Any, batch: dict[str, jax.Array], *, train: bool,
                dtype: jnp.dtype, rng: jax.Array | None = None,
                rng_streams: tuple[str, ...] = ()) -> dict[str, jax.Array]:
  """Runs the model in `dtype` (fp32 master parameters are cast) and returns fp32 outputs.

  In training each of `rng_streams` gets its own key, folded from `rng` by the stream's index.
  """
  rngs = None
  if train:
    rngs = {name: jax.random.fold_in(rng, i) for i, name in enumerate(rng_streams)}
  outputs = model.apply({'params': _cast_floats(params, dtype)}, _narrow_floats(batch, dtype),
                        train=train, rngs=rngs)
  return _cast_floats(outputs, jnp.float32)


def make_train_step(training: Training, model: nn.Module, config: ml_collections.ConfigDict,
                    schedule: optax.Schedule, encoder: Encoder | None = None
                    ) -> Callable[[TrainState, dict, Any], tuple[TrainState, dict]]:
  """(state, batch, frozen) -> (new state, scalar metrics). Not yet jitted."""
  dtype = compute_dtype(config)

  def train_step(state: TrainState, batch: dict[str, jax.Array], frozen: Any):
    if encoder is not None:
      batch = encoder(frozen, batch)
    step_rng = jax.random.fold_in(state.rng, state.step)

    def loss_of(params):
      outputs = apply_model(model, params, batch, train=True, dtype=dtype, rng=step_rng,
                            rng_streams=training.rng_streams)
      return training.loss_fn(outputs, batch, config)

    (loss, terms), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)

    # A non-finite loss or gradient freezes the state at the last good values and records the
    # step; the host stops the run at its next check, before any checkpoint is written.
    grad_norm = optax.global_norm(grads)
    ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & (state.first_nonfinite_step < 0)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)
    updated = state.replace(params=params, opt_state=opt_state).update_ema()
    new_state = state.replace(
        step=state.step + 1,
        params=keep(updated.params, state.params),
        opt_state=keep(updated.opt_state, state.opt_state),
        ema_params=keep(updated.ema_params, state.ema_params),
        first_nonfinite_step=jnp.where(ok | (state.first_nonfinite_step >= 0),
                                       state.first_nonfinite_step, state.step))
    metrics = {'loss': loss, **terms, 'grad_norm': grad_norm,
               'lr': schedule(state.step)}
    return new_state, metrics

  return train_step


def make_eval_step(model: nn.Module, config: ml_collections.ConfigDict,
                   encoder: Encoder | None = None) -> Callable[[Any, dict, Any], dict]:
  """(params, batch, frozen) -> model outputs (deterministic). Not yet jitted."""
  dtype = compute_dtype(config)

  def eval_step(params: Any, batch: dict[str, jax.Array], frozen: Any):
    if encoder is not None:
      batch = encoder(frozen, batch)
    return apply_model(model, params, batch, train=False, dtype=dtype)

  return eval_step


def jit_train_step(train_step, mesh: Mesh, state_shardings: Any, frozen_shardings: Any):
  """Jits the train step with explicit shardings; the state is donated."""
  batch_sh = mesh_lib.batch_sharding(mesh)
  return jax.jit(train_step, in_shardings=(state_shardings, batch_sh, frozen_shardings),
                 out_shardings=(state_shardings, mesh_lib.replicated(mesh)), donate_argnums=0)


def jit_eval_step(eval_step, mesh: Mesh, params_shardings: Any, frozen_shardings: Any):
  """Jits the eval step; output layouts are left to the compiler (gathered on the host)."""
  batch_sh = mesh_lib.batch_sharding(mesh)
  return jax.jit(eval_step, in_shardings=(params_shardings, batch_sh, frozen_shardings))
