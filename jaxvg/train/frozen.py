"""A task's frozen backbone on the mesh: its parameters are laid out once by its sharding rules
and passed to the jitted steps as an argument, so they are never differentiated nor stored in
the optimiser, and checkpoints never hold them."""
from __future__ import annotations

from typing import Any

import jax
from jax.sharding import Mesh

from jaxvg.registry import FrozenBackbone
from jaxvg.train import mesh as mesh_lib


def shardings(frozen: FrozenBackbone | None, mesh: Mesh) -> Any:
  """NamedShardings of the backbone's parameters (None without a backbone)."""
  if frozen is None:
    return None
  return mesh_lib.param_shardings(mesh, frozen.params, frozen.rules)


def lay_out(frozen: FrozenBackbone | None, mesh: Mesh) -> Any:
  """The backbone's parameters placed on the mesh (None without a backbone)."""
  if frozen is None:
    return None
  return jax.device_put(frozen.params, shardings(frozen, mesh))
