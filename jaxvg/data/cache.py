"""Generated-on-first-use folders (the embedded benchmarks), built atomically.

The folder is written under a temporary name beside its final one and renamed into place, so a
run killed mid-way leaves nothing half-written, and processes racing to build it end with one
identical copy.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Callable


def build_once(final: str, marker: str, build: Callable[[str], None]) -> None:
  """Runs `build(tmp_dir)` and renames it to `final`, unless `final/marker` already exists."""
  if os.path.exists(os.path.join(final, marker)):
    return
  parent = os.path.dirname(final) or '.'
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=f'.tmp-{os.path.basename(final)}-')
  try:
    build(tmp)
    try:
      os.rename(tmp, final)
    except OSError:  # Another process finished first; its copy is identical.
      if not os.path.exists(os.path.join(final, marker)):
        raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
