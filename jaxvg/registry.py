"""Task registry: the one contract between the trainer and a model family.

A *task* bundles everything the engine needs to train, predict and score one system
(R²-Tuning today; SDST, CG-STVG/NST and the zero-shot pipeline later). The trainer only ever
sees this contract, so a new system plugs in by registering a task, never by editing the loop.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import flax.linen as nn
import ml_collections

Batch = Mapping[str, Any]
Outputs = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Task:
  """What the engine needs from a model family.

  Attributes:
    name: registry key, the value of `config.task`.
    build_model: config -> linen module; `module.apply(params, batch, train=..., rngs=...)`
      returns an outputs dict of arrays.
    loss_fn: (outputs, batch, config) -> (scalar loss, dict of scalar terms). Pure, jittable.
    postprocess: (outputs as numpy, host metadata, config) -> list of submission rows
      (QVHighlights submission dicts for temporal grounding). Runs on the host.
    dummy_batch: (config, batch_size) -> batch dict of zeros with the static training shapes;
      used to initialise parameters and to count them.
  """
  name: str
  build_model: Callable[[ml_collections.ConfigDict], nn.Module]
  loss_fn: Callable[[Outputs, Batch, ml_collections.ConfigDict], tuple[Any, dict[str, Any]]]
  postprocess: Callable[[Outputs, Mapping[str, Any], ml_collections.ConfigDict], list[dict]]
  dummy_batch: Callable[[ml_collections.ConfigDict, int], dict[str, Any]]


_TASKS: dict[str, Callable[[], Task]] = {}


def register(name: str) -> Callable[[Callable[[], Task]], Callable[[], Task]]:
  """Decorator registering a zero-argument factory of a Task under `name`."""
  def wrap(factory: Callable[[], Task]) -> Callable[[], Task]:
    if name in _TASKS:
      raise ValueError(f'task {name!r} is registered twice')
    _TASKS[name] = factory
    return factory
  return wrap


def get_task(name: str) -> Task:
  """Returns the task registered as `name`; imports the built-in tasks on first use."""
  import jaxvg.tasks  # noqa: F401  (registers the built-in tasks)
  if name not in _TASKS:
    raise KeyError(f'unknown task {name!r}; registered: {sorted(_TASKS)}')
  return _TASKS[name]()
