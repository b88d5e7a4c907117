"""The task contract and the routing table: how a system plugs into the engine.

A *task* bundles everything the engine needs to train, predict and score one system. The
engine (`jaxvg.train`), the data pipeline (`jaxvg.data.pipeline`) and `jaxvg.Predictor` only
ever see this contract, so a new system plugs in by adding its folder under `jaxvg/projects/`
and one line to `TASK_MODULES`, never by editing the loop.

What every system has is `Task`; what trainable systems add is `Training`; a system whose loop
is not a train step (a zero-shot pipeline) supplies its own `runner`. Task modules are imported
on demand, so running one system never imports another's dependencies.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Mapping, Protocol, Sequence

import flax.linen as nn
import ml_collections
from jax.sharding import PartitionSpec

from jaxvg.errors import UserError

Config = ml_collections.ConfigDict
Batch = Mapping[str, Any]
Outputs = Mapping[str, Any]
Metadata = Mapping[str, Any]
# (regex on the '/'-joined parameter path, PartitionSpec over the mesh axes 'data' and 'model').
ShardingRules = Sequence[tuple[str, PartitionSpec]]

# Task name (`config.task`) -> the module defining its `TASK`. A task outside the package is named
# by its module path instead (`config.task = 'my_project.task'`).
TASK_MODULES: dict[str, str] = {
    'r2tuning': 'jaxvg.projects.r2tuning.task',
    'sdst': 'jaxvg.projects.sdst.task',
    'cgstvg': 'jaxvg.projects.cgstvg.task',
    'zeroshot': 'jaxvg.projects.zeroshot.task',
    'nst': 'jaxvg.projects.nst.task',
}


class DataAdapter(Protocol):
  """The host side of a task: records -> examples -> static-shape batches. Picklable (Grain
  worker processes receive it).

  `length(record)` is the size the batch's bucket is chosen from (clips, frames); the pipeline
  takes the maximum over the *global* batch so that every process pads to the same shape.
  `example(record, epoch=, index=)` loads one sample; all randomness is a function of the
  adapter's seed, `epoch` and `index` (the record's position in the epoch), so a resumed run
  replays it exactly. `collate(examples, length)` pads the examples (None = a padding sample) to
  the bucket of `length` and returns (batch of arrays, host metadata of lists/arrays); the batch
  holds `sample_mask` (B,), false for padding samples.
  """

  def length(self, record: Any) -> int: ...

  def example(self, record: Any, *, epoch: int, index: int) -> dict[str, Any]: ...

  def collate(self, examples: Sequence[dict[str, Any] | None], length: int
              ) -> tuple[dict[str, Any], dict[str, Any]]: ...


@dataclasses.dataclass(frozen=True)
class FrozenBackbone:
  """A pretrained network run inside the jitted step but never trained.

  Attributes:
    params: its parameters (host arrays; the engine lays them out on the mesh by `rules`).
    encode: (params, batch) -> batch: replaces raw inputs (frames, token ids) by the features the
      trainable model reads. Runs under the step's jit; its outputs are not differentiated.
    rules: sharding rules of its parameters (large towers shard on 'model').
  """
  params: Any
  encode: Callable[[Any, dict[str, Any]], dict[str, Any]]
  rules: ShardingRules = ()


@dataclasses.dataclass(frozen=True)
class FinalStage:
  """A step of a system's recipe after its last training step and before the final checkpoint:
  new values for some parameters, computed from the finished model (a head fit on its outputs).

  Attributes:
    name: what it does, for the log ('tube span fit').
    apply: (the engine's Run, the evaluated parameters) -> a subtree of parameters (the same
      paths and shapes); the engine writes it into both the trained and the evaluated (EMA)
      weights. Must give the same values on every host.
  """
  name: str
  apply: Callable[[Any, Any], Any]


@dataclasses.dataclass(frozen=True)
class Training:
  """What a trainable system adds to its task.

  Attributes:
    loss_fn: (outputs, batch, config) -> (scalar loss, dict of scalar terms). Pure, jittable.
    rng_streams: the linen RNG collections the model draws from in training; each gets its own
      key folded from (seed, step).
    param_labels: (config, params) -> a pytree of group names, one per parameter, for per-group
      optimisers (`config.optim.groups[name]`: lr multiplier, frozen; the group 'frozen' is
      always frozen); None = one group 'default'.
    make_optimizer: (config, steps_per_epoch, params) -> the optimiser, for a system whose
      official recipe gives groups schedules of their own shape; None = `jaxvg.train.optim`.
    final_stage: config -> the `FinalStage` this config asks for, or None.
  """
  loss_fn: Callable[[Outputs, Batch, Config], tuple[Any, dict[str, Any]]]
  rng_streams: tuple[str, ...] = ('dropout',)
  param_labels: Callable[[Config, Any], Any] | None = None
  make_optimizer: Callable[[Config, int, Any], Any] | None = None
  final_stage: Callable[[Config], FinalStage | None] | None = None


@dataclasses.dataclass(frozen=True)
class UserVideo:
  """`--mode predict --video PATH --query Q [--query Q2 ...] [--proposals FILE]`: queries to
  ground in one user's video, handed to a task's `runner` (`proposals`: the candidate tubes of a
  system that scores them, else None)."""
  path: str
  queries: tuple[str, ...]
  proposals: str | None = None


def no_frozen_backbone(config: Config) -> FrozenBackbone | None:
  del config
  return None


def no_sharding_rules(config: Config) -> ShardingRules:
  del config
  return ()


@dataclasses.dataclass(frozen=True)
class Task:
  """What the engine needs from every system.

  Attributes:
    name: the value of `config.task`.
    build_model: config -> linen module; `apply({'params': p}, batch, train=..., rngs=...)`
      returns a dict of arrays.
    dummy_batch: (config, batch_size) -> a batch of zeros at the smallest static shapes, with
      masks true, used to initialise and count parameters.
    make_data: (config, *, train, seed, process_count) -> the task's `DataAdapter` (what one
      example is and how examples are padded; `train` selects training-only behaviour such as
      augmentation; with several processes, shapes must agree across them).
    postprocess: (outputs as numpy, host metadata, config) -> submission rows of the real
      samples, in the evaluation protocol's format (`jaxvg.evaluation.evaluate`).
    load_weights: (path, config) -> parameters from a released checkpoint (the official format),
      or None if the system has none.
    pretrained_params: (config) -> a subtree of the parameters (host arrays) that replaces
      their fresh initialisation, such as a pretrained backbone the config names; None (or a
      function returning None) when everything starts fresh. Called outside any trace, only where
      parameters start fresh (training, `trainer.init_params`), never to restore a checkpoint.
    frozen_backbone: config -> the `FrozenBackbone` the step runs, or None.
    sharding_rules: config -> rules for the trainable parameters (default: replicated).
    training: `Training`, or None for a system that is never trained.
    runner: (config, workdir, mode, video) -> None for a system with its own loop (no train
      step); the engine hands it every mode, and `video` (a `UserVideo`, else None) when the
      command names one.
    video_predictor: (run, params, **options) -> the object behind `jaxvg.Predictor` for one
      user video: `encode_video(path)`, `predict(queries, video)`, `plot(rows, video, path)`,
      `describe(rows, video)`, and a static `check_queries(queries)`; or None.
    base_config: () -> the config the task's experiment files start from. A run directory
      written before a field existed lacks it; `Predictor.from_workdir` reads such a field from
      here (its default, which keeps the earlier behaviour). None: the saved config as it is.
    reference_scores: (config, records of the val split) -> {reference: val metrics} of
      predictors that need no training (a query-blind baseline, an oracle), which the engine
      prints beside the model's after training and evaluation; {} where the dataset has none.
  """
  name: str
  build_model: Callable[[Config], nn.Module]
  dummy_batch: Callable[[Config, int], dict[str, Any]]
  make_data: Callable[..., DataAdapter]
  postprocess: Callable[[Outputs, Metadata, Config], list[dict]]
  load_weights: Callable[[str, Config], Any] | None = None
  pretrained_params: Callable[[Config], Any] | None = None
  frozen_backbone: Callable[[Config], FrozenBackbone | None] = no_frozen_backbone
  sharding_rules: Callable[[Config], ShardingRules] = no_sharding_rules
  training: Training | None = None
  runner: Callable[[Config, str | None, str, UserVideo | None], Any] | None = None
  video_predictor: Callable[..., Any] | None = None
  base_config: Callable[[], Config] | None = None
  reference_scores: Callable[[Config, Sequence[Any]], dict[str, dict[str, float]]] | None = None


def get_task(name: str) -> Task:
  """The task `name`: its module (from `TASK_MODULES`, or `name` itself as a module path) is
  imported now, and only it."""
  module_name = TASK_MODULES.get(name, name if '.' in name else None)
  if module_name is None:
    raise UserError(f'unknown task {name!r}; known: {sorted(TASK_MODULES)} (or a module path '
                    'defining TASK)')
  try:
    module = importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    if e.name and module_name.startswith(e.name):
      raise UserError(f'task {name!r}: no module {module_name!r}') from None
    raise
  task = getattr(module, 'TASK', None)
  if not isinstance(task, Task):
    raise UserError(f'task module {module_name!r} defines no TASK of type jaxvg.registry.Task')
  return task
