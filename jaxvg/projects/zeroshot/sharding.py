"""Tensor-parallel layout of LLaVA parameters on the mesh's `model` axis (optionally FSDP on `data`).

Megatron-style: projections into attention heads / MLP hidden units are split by output column
(q/k/v, gate/up, fc1, linear_1), the projections back by input row (o_proj, down_proj, fc2,
out_proj, linear_2), the vocabulary of the embedding and the LM head by rows/columns. With `fsdp`
the other dimension of each large matrix is split over `data`, so a 7B backend's bf16 weights
(~16 GB) spread over all chips of a v4-8 / v5e-8. Everything else (norms, biases of row-split
layers, position tables, the newline vector) is replicated. Use with
`jaxvg.train.mesh.param_shardings(mesh, params, rules(fsdp))`.
"""
from __future__ import annotations

from jax.sharding import PartitionSpec as P

# The mesh axes of the engine contract (`jaxvg.registry.ShardingRules`), named here rather than
# imported from `jaxvg.train.mesh`: a project sits below the engine and never imports from it.
DATA_AXIS, MODEL_AXIS = 'data', 'model'

_COLUMN = r'(q_proj|k_proj|v_proj|gate_proj|up_proj|fc1|linear_1)'
_ROW = r'(o_proj|down_proj|out_proj|fc2|linear_2)'


def rules(fsdp: bool = False) -> tuple[tuple[str, P], ...]:
  """(regex on the '/'-joined param path, PartitionSpec); first match wins, default replicated."""
  other = DATA_AXIS if fsdp else None
  return (
      (rf'{_COLUMN}/kernel$', P(other, MODEL_AXIS)),
      (rf'{_COLUMN}/bias$', P(MODEL_AXIS)),
      (rf'{_ROW}/kernel$', P(MODEL_AXIS, other)),
      (r'embed_tokens/embedding$', P(MODEL_AXIS, other)),
      (r'lm_head/kernel$', P(other, MODEL_AXIS)),
  )
