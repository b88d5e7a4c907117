"""Orbax checkpoints: the latest k (asynchronous) and the best by the primary metric.

A latest checkpoint holds the items `params`, `ema` (with `train.ema_decay` > 0), `train` (step,
optimiser state, PRNG key, NaN guard), `data` (the Grain iterator state) and `run` (epoch); a
best checkpoint holds only the evaluated weights as `params`. Inference restores `params` alone,
never the optimiser state. Paths go through `etils.epath`, so a `gs://` workdir works as on disk.
Saves are atomic: a run killed while writing leaves the previous checkpoint as the latest one.
"""
from __future__ import annotations

from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath

from jaxvg.data import readers
from jaxvg.errors import UserError
from jaxvg.train.state import TrainState


def _train_tree(state: TrainState) -> dict[str, Any]:
  return {'step': state.step, 'opt_state': state.opt_state, 'rng': state.rng,
          'first_nonfinite_step': state.first_nonfinite_step}


def _abstract(tree: Any) -> Any:
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class Checkpoints:
  """`latest/` keeps the last `keep` checkpoints; `best/` keeps the best by `primary_metric`.

  `read_only=True` (eval, predict, info) creates nothing and fails with a `UserError` naming the
  directory if there is no checkpoint to read.
  """

  def __init__(self, workdir: str | epath.PathLike, config: ml_collections.ConfigDict,
               *, asynchronous: bool = True, read_only: bool = False):
    root = epath.Path(workdir) / 'checkpoints'
    self.primary_metric = readers.evaluation_protocol(config)[1]
    if read_only and not root.exists():
      raise UserError(f'no checkpoints in {root}: train first (--mode train) or give the path '
                      'of a released checkpoint with --checkpoint')
    self.latest = ocp.CheckpointManager(
        root / 'latest', options=ocp.CheckpointManagerOptions(
            max_to_keep=config.train.keep_checkpoints, create=not read_only,
            read_only=read_only, enable_async_checkpointing=asynchronous and not read_only))
    self.best = ocp.CheckpointManager(
        root / 'best', options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=not read_only, read_only=read_only,
            best_fn=lambda m: m[self.primary_metric], best_mode='max',
            enable_async_checkpointing=asynchronous and not read_only))

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def save(self, state: TrainState, data_state: dict[str, Any], run: dict[str, Any]) -> None:
    """Saves (asynchronously) unless this step is already saved."""
    step = int(jax.device_get(state.step))
    if step in self.latest.all_steps():
      return
    items = dict(params=ocp.args.StandardSave(state.params),
                 train=ocp.args.StandardSave(_train_tree(state)),
                 data=ocp.args.JsonSave(data_state), run=ocp.args.JsonSave(run))
    if state.ema_params is not None:
      items['ema'] = ocp.args.StandardSave(state.ema_params)
    self.latest.save(step, args=ocp.args.Composite(**items), force=True)

  def save_best(self, state: TrainState, metrics: dict[str, float], run: dict[str, Any]) -> None:
    """Offers the evaluated weights to `best/`; Orbax keeps them only if they beat the kept."""
    step = int(jax.device_get(state.step))
    if self.best.latest_step() == step or self.primary_metric not in metrics:
      return
    args = ocp.args.Composite(params=ocp.args.StandardSave(state.eval_params),
                              run=ocp.args.JsonSave(run))
    self.best.save(step, args=args, metrics=dict(metrics), force=True)

  def restore(self, initial: TrainState, step: int | None = None
              ) -> tuple[TrainState, dict[str, Any], dict[str, Any]]:
    """Resumes training: the latest (or `step`) state in the layout (shapes, dtypes,
    shardings) of `initial`, the data iterator state and the run facts."""
    step = self.latest.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'no checkpoint in {self.latest.directory}')
    items = dict(params=ocp.args.StandardRestore(_abstract(initial.params)),
                 train=ocp.args.StandardRestore(_abstract(_train_tree(initial))),
                 data=ocp.args.JsonRestore(), run=ocp.args.JsonRestore())
    if initial.ema_params is not None:
      items['ema'] = ocp.args.StandardRestore(_abstract(initial.ema_params))
    restored = self.latest.restore(step, args=ocp.args.Composite(**items))
    state = initial.replace(params=restored['params'], **restored['train'])
    if initial.ema_params is not None:
      state = state.replace(ema_params=restored['ema'])
    return state, restored['data'], restored['run']

  def restore_params(self, abstract_params: Any, *, best: bool = False, ema: bool = False
                     ) -> tuple[Any, int]:
    """(evaluated weights, step) of the best or latest checkpoint, in the layout of
    `abstract_params` (ShapeDtypeStructs with shardings); the optimiser state is not read."""
    manager = self.best if best else self.latest
    step = manager.best_step() if best else manager.latest_step()
    if step is None:
      raise UserError(f'no checkpoint in {manager.directory}')
    item = 'ema' if ema and not best else 'params'
    restored = manager.restore(step, args=ocp.args.Composite(
        **{item: ocp.args.StandardRestore(abstract_params)}))
    return restored[item], step

  def wait(self) -> None:
    self.latest.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    self.latest.close()
    self.best.close()
