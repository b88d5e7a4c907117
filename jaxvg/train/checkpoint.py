"""Orbax checkpoints: the latest k (asynchronous) and the best by the primary metric.

One item set per checkpoint: the train state (sharded arrays), the data iterator state and a
small JSON of run facts (epoch, config). Saves are atomic: a run killed while writing leaves the
previous checkpoint as the latest one.
"""
from __future__ import annotations

import pathlib
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

from jaxvg.train.state import TrainState


def _state_tree(state: TrainState) -> dict[str, Any]:
  return {'step': state.step, 'params': state.params, 'opt_state': state.opt_state,
          'rng': state.rng, 'first_nonfinite_step': state.first_nonfinite_step}


class Checkpoints:
  """`latest/` keeps the last `keep` checkpoints; `best/` keeps the best by `primary_metric`."""

  def __init__(self, workdir: str | pathlib.Path, config: ml_collections.ConfigDict,
               *, asynchronous: bool = True):
    root = pathlib.Path(workdir).absolute() / 'checkpoints'
    self.primary_metric = config.eval.primary_metric
    self.latest = ocp.CheckpointManager(
        root / 'latest', options=ocp.CheckpointManagerOptions(
            max_to_keep=config.train.keep_checkpoints, create=True,
            enable_async_checkpointing=asynchronous))
    self.best = ocp.CheckpointManager(
        root / 'best', options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, best_fn=lambda m: m[self.primary_metric],
            best_mode='max', enable_async_checkpointing=asynchronous))

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def save(self, state: TrainState, data_state: dict[str, Any], run: dict[str, Any]) -> None:
    """Saves (asynchronously) unless this step is already saved."""
    step = int(jax.device_get(state.step))
    if step in self.latest.all_steps():
      return
    args = ocp.args.Composite(state=ocp.args.StandardSave(_state_tree(state)),
                              data=ocp.args.JsonSave(data_state), run=ocp.args.JsonSave(run))
    self.latest.save(step, args=args, force=True)

  def save_best(self, state: TrainState, metrics: dict[str, float], run: dict[str, Any]) -> None:
    """Offers the state to `best/`; Orbax keeps it only if it beats the kept one."""
    step = int(jax.device_get(state.step))
    if self.best.latest_step() == step or self.primary_metric not in metrics:
      return
    args = ocp.args.Composite(state=ocp.args.StandardSave(_state_tree(state)),
                              run=ocp.args.JsonSave(run))
    self.best.save(step, args=args, metrics=dict(metrics), force=True)

  def restore(self, abstract_state: TrainState, step: int | None = None, *, best: bool = False
              ) -> tuple[TrainState, dict[str, Any] | None, dict[str, Any]]:
    """Restores into the layout (shapes, dtypes, shardings) of `abstract_state`."""
    manager = self.best if best else self.latest
    step = step if step is not None else (manager.best_step() if best else manager.latest_step())
    if step is None:
      raise FileNotFoundError(f'no checkpoint in {manager.directory}')
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _state_tree(abstract_state))
    items = {'state': ocp.args.StandardRestore(abstract), 'run': ocp.args.JsonRestore()}
    if not best:
      items['data'] = ocp.args.JsonRestore()
    restored = manager.restore(step, args=ocp.args.Composite(**items))
    tree = restored['state']
    state = abstract_state.replace(**tree)
    return state, restored.get('data') if not best else None, restored['run']

  def wait(self) -> None:
    self.latest.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    self.latest.close()
    self.best.close()
