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
  `ema_params` is the exponential moving average of the parameters (`train.ema_decay` > 0; the
  weights that are evaluated and kept as best), or None.
  """
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array
  first_nonfinite_step: jax.Array
  ema_params: Any
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  ema_decay: float = flax.struct.field(pytree_node=False, default=0.0)

  @classmethod
  def create(cls, params: Any, tx: optax.GradientTransformation, rng: jax.Array,
             ema_decay: float = 0.0) -> 'TrainState':
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
               rng=rng, first_nonfinite_step=jnp.full((), -1, jnp.int32),
               ema_params=params if ema_decay > 0 else None, tx=tx, ema_decay=ema_decay)

  @property
  def eval_params(self) -> Any:
    """The weights to evaluate, predict with and keep as best: the EMA if there is one."""
    return self.params if self.ema_params is None else self.ema_params

  def update_ema(self) -> 'TrainState':
    if self.ema_params is None:
      return self
    d = self.ema_decay
    return self.replace(ema_params=jax.tree.map(lambda e, p: d * e + (1.0 - d) * p,
                                                self.ema_params, self.params))


def count_params(params: Any, trainable: Any | None = None) -> int:
  """Parameters in `params`; with `trainable` (a like pytree of bools) only those marked."""
  if trainable is None:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
  return int(sum(np.prod(x.shape) for x, keep in zip(jax.tree.leaves(params),
                                                      jax.tree.leaves(trainable)) if keep))


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


def summary(params: Any, trainable: Any | None = None) -> str:
  """One line per parameter (path, shape, count, 'frozen' for those `trainable` (a like pytree
  of bools) marks false); the last line is the trainable total."""
  flags = [True] * len(jax.tree.leaves(params)) if trainable is None else \
      jax.tree.leaves(trainable)
  lines = []
  for (path, leaf), keep in zip(jax.tree_util.tree_flatten_with_path(params)[0], flags):
    name = '/'.join(str(getattr(k, 'key', k)) for k in path)
    lines.append(f'{name:<70} {str(tuple(leaf.shape)):<18} {int(np.prod(leaf.shape)):>10,}'
                 + ('' if keep else '  frozen'))
  lines.append(f'trainable parameters: {count_params(params, trainable)}')
  return '\n'.join(lines)
