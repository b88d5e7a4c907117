"""What the benchmarks record about the machine, and the one timer they all use.

A cloud VM's vCPUs are shared with other guests: the hypervisor's *steal time* (in /proc/stat)
is the share of the machine's CPU time it gave to them. On the 2-core hosts here it has been
0 to ≈ 0.4 within one day, and every wall time (the matmul ceiling included) moves with it, so
each timed figure carries the steal fraction of its own interval. Imports nothing heavy: the
PyTorch reference script uses the same timer.
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
import platform
import time
from typing import Any, Callable

PROC_STAT = pathlib.Path('/proc/stat')
_FIELDS = 8  # user nice system idle iowait irq softirq steal (guest time is inside user)
_STEAL = 7


def cpu_model() -> str:
  """The CPU's model name (Linux), or the platform's processor string."""
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown'


def cpu_ticks(proc_stat: pathlib.Path = PROC_STAT) -> tuple[int, ...] | None:
  """The machine-wide CPU time counters (clock ticks), or None where /proc/stat is absent."""
  try:
    first = proc_stat.read_text().splitlines()[0].split()
  except (OSError, IndexError):
    return None
  if first[:1] != ['cpu'] or len(first) < 1 + _FIELDS:
    return None
  return tuple(int(v) for v in first[1:1 + _FIELDS])


def steal_fraction(before: tuple[int, ...] | None, after: tuple[int, ...] | None) -> float:
  """Steal ticks over all ticks between two `cpu_ticks` readings (NaN when unknown or when no
  tick elapsed)."""
  if before is None or after is None:
    return math.nan
  delta = [b - a for a, b in zip(before, after)]
  total = sum(delta)
  return delta[_STEAL] / total if total > 0 else math.nan


@dataclasses.dataclass(frozen=True)
class Sample:
  wall_s: float
  cpu_s: float  # this process's CPU time: on an idle 2-core machine ≈ 2 × wall when parallel
  steal_fraction: float


def timed(call: Callable[[], Any]) -> tuple[Any, Sample]:
  """(what `call` returned, its wall/CPU seconds and the steal fraction meanwhile). A JAX
  caller blocks inside `call` (`jax.block_until_ready`)."""
  ticks = cpu_ticks()
  start, start_cpu = time.perf_counter(), time.process_time()
  out = call()
  wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
  return out, Sample(wall, cpu, steal_fraction(ticks, cpu_ticks()))
