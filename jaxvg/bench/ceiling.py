"""The CPU's matmul ceiling, measured in the same run as the benchmarks it normalises.

The machine is shared, so a ceiling measured once and written down is not what a later run gets;
ratios against this one stay meaningful under load.
"""
from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp

SIZE = 4096


def run(repeats: int = 5) -> dict:
  """fp32 (4096, 4096) @ (4096, 4096) through jnp: median and best GFLOP/s over `repeats`."""
  a = jax.random.normal(jax.random.key(0), (SIZE, SIZE), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  matmul(a, a).block_until_ready()
  rates = []
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a, a).block_until_ready()
    rates.append(2 * SIZE**3 / (time.perf_counter() - start) / 1e9)
  return {'matmul_gflops': statistics.median(rates), 'matmul_gflops_best': max(rates)}
