"""Scalars to a JSONL file and TensorBoard event files in the workdir (process 0 only)."""
from __future__ import annotations

import json
import pathlib
from typing import Any, Mapping

import jax
import numpy as np


class MetricWriter:
  """Writes `{'step': s, 'split': ..., name: value, ...}` lines and TensorBoard scalars."""

  def __init__(self, workdir: str | pathlib.Path | None):
    self.enabled = workdir is not None and jax.process_index() == 0
    if not self.enabled:
      return
    root = pathlib.Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    self._jsonl = open(root / 'metrics.jsonl', 'a', encoding='utf-8')
    from tensorboardX import SummaryWriter  # imported lazily: heavy, and only process 0 needs it
    self._tb = SummaryWriter(str(root / 'tensorboard'))

  def write(self, step: int, split: str, scalars: Mapping[str, Any]) -> None:
    if not self.enabled:
      return
    values = {k: float(np.asarray(v)) for k, v in scalars.items()}
    self._jsonl.write(json.dumps({'step': int(step), 'split': split, **values}) + '\n')
    self._jsonl.flush()
    for name, value in values.items():
      self._tb.add_scalar(f'{split}/{name}', value, int(step))
    self._tb.flush()

  def close(self) -> None:
    if self.enabled:
      self._jsonl.close()
      self._tb.close()
