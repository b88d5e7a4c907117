"""The train state: a pytree of everything that changes during training, and nothing frozen."""
from __future__ import annotations

import hashlib
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax


@flax.struct.dataclass
class TrainState:
  """Trainable parameters, optimiser state, step counter and root PRNG key.

  `first_nonfinite_step` is -1 while every loss so far was finite; otherwise the step whose loss
  was NaN/Inf. From then on updates are skipped, so the state keeps the last good parameters.
  """
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array
  first_nonfinite_step: jax.Array
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

  @classmethod
  def create(cls, params: Any, tx: optax.GradientTransformation, rng: jax.Array
             ) -> 'TrainState':
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
               rng=rng, first_nonfinite_step=jnp.full((), -1, jnp.int32), tx=tx)


def count_params(params: Any) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def params_sha256(params: Any) -> str:
  """A digest of every parameter's path, dtype, shape and bytes: equal iff bitwise equal."""
  digest = hashlib.sha256()
  for path, leaf in sorted(jax.tree_util.tree_flatten_with_path(params)[0],
                           key=lambda item: jax.tree_util.keystr(item[0])):
    array = np.asarray(jax.device_get(leaf))
    digest.update(jax.tree_util.keystr(path).encode())
    digest.update(f'{array.dtype}{array.shape}'.encode())
    digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()


def summary(params: Any) -> str:
  """One line per parameter (path, shape, count); the last line is the trainable total."""
  lines = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    name = '/'.join(str(getattr(k, 'key', k)) for k in path)
    lines.append(f'{name:<70} {str(tuple(leaf.shape)):<18} {int(np.prod(leaf.shape)):>10,}')
  lines.append(f'trainable parameters: {count_params(params)}')
  return '\n'.join(lines)
