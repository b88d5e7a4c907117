"""Scalars to a JSONL file and TensorBoard event files in the workdir (process 0 only).

The JSONL file goes through `etils.epath`, rewritten whole on each write (object stores such as
`gs://` cannot append); TensorBoard event files are written for local workdirs only.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import jax
import numpy as np
from etils import epath


class MetricWriter:
  """Writes `{'step': s, 'split': ..., name: value, ...}` lines and TensorBoard scalars."""

  def __init__(self, workdir: str | epath.PathLike | None):
    self.enabled = workdir is not None and jax.process_index() == 0
    if not self.enabled:
      return
    root = epath.Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    self._path = root / 'metrics.jsonl'
    self._text = self._path.read_text() if self._path.exists() else ''
    self._tb = None
    if '://' not in str(root):
      from tensorboardX import SummaryWriter  # lazily: heavy, and only process 0 needs it
      self._tb = SummaryWriter(str(root / 'tensorboard'))

  def write(self, step: int, split: str, scalars: Mapping[str, Any]) -> None:
    if not self.enabled:
      return
    values = {k: float(np.asarray(v)) for k, v in scalars.items()}
    self._text += json.dumps({'step': int(step), 'split': split, **values}) + '\n'
    self._path.write_text(self._text)
    if self._tb is not None:
      for name, value in values.items():
        self._tb.add_scalar(f'{split}/{name}', value, int(step))
      self._tb.flush()

  def close(self) -> None:
    if self.enabled and self._tb is not None:
      self._tb.close()
