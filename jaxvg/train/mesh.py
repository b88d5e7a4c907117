"""Device mesh and sharding rules: one `Mesh` with `data` and `model` axes, `NamedSharding` everywhere.

The same code runs on 1 CPU, on 8 fake CPU devices, on a GPU host and on a TPU pod slice: only the
mesh shape changes. Parameters are replicated unless a (regex -> PartitionSpec) rule says otherwise.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'
MODEL_AXIS = 'model'

# (regex on the '/'-joined parameter path, PartitionSpec). First match wins; default replicated.
# The R²-Tuning adapter (2.8M parameters) is replicated; large frozen towers add rules here.
DEFAULT_RULES: tuple[tuple[str, P], ...] = ()


def make_mesh(mesh_config: ml_collections.ConfigDict, devices: Sequence[jax.Device] | None = None
              ) -> Mesh:
  """Builds the (data, model) mesh; a size of -1 takes all remaining devices."""
  devices = list(devices if devices is not None else jax.devices())
  data, model = int(mesh_config.data), int(mesh_config.model)
  if model == -1 and data == -1:
    raise ValueError('at most one of mesh.data and mesh.model may be -1')
  if data == -1:
    data = len(devices) // model
  if model == -1:
    model = len(devices) // data
  if data * model != len(devices):
    raise ValueError(f'mesh data={data} x model={model} does not cover {len(devices)} devices')
  # Auto axes: the compiler propagates shardings from the inputs (batch on `data`) through the
  # model, so modules need no sharding annotations.
  auto = (jax.sharding.AxisType.Auto,) * 2
  if devices == list(jax.devices()):
    return jax.make_mesh((data, model), (DATA_AXIS, MODEL_AXIS), axis_types=auto)
  return Mesh(np.asarray(devices).reshape(data, model), (DATA_AXIS, MODEL_AXIS), axis_types=auto)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`, everything else replicated."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _path_name(path: tuple[Any, ...]) -> str:
  return '/'.join(str(getattr(k, 'key', getattr(k, 'name', getattr(k, 'idx', k)))) for k in path)


def param_shardings(mesh: Mesh, tree: Any,
                    rules: Sequence[tuple[str, P]] = DEFAULT_RULES) -> Any:
  """A NamedSharding per leaf of `tree` (arrays or ShapeDtypeStructs) from the regex rules."""
  def for_leaf(path, _):
    name = _path_name(path)
    for pattern, spec in rules:
      if re.search(pattern, name):
        return NamedSharding(mesh, spec)
    return replicated(mesh)
  return jax.tree_util.tree_map_with_path(for_leaf, tree)


def host_batch_size(global_batch_size: int) -> int:
  """Rows of the global batch that this process loads (each host reads its own shard)."""
  if global_batch_size % jax.process_count():
    raise ValueError(f'batch size {global_batch_size} is not divisible by the '
                     f'{jax.process_count()} processes')
  return global_batch_size // jax.process_count()


def to_global(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles the process-local rows of every host into global arrays sharded on `data`."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}
