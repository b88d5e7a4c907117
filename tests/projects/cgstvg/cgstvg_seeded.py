"""Seeded weights and inputs shared by the official-parity fixture script and the tests.

Generated with numpy only, from (seed, key), so the committed fixture holds outputs, not weights:
both sides rebuild the same official-layout state dict and the same frames.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

SEED = 20240317
FRAMES, HEIGHT, WIDTH = 4, 96, 128       # C5 / Swin stage-4 grid 3 x 4
TEXT_IDS = [0, 31, 7, 55, 12, 2]         # <s> ... </s> in a 100-token vocabulary
SWIN_DIMS = 768


def _rng(*parts: int | str) -> np.random.Generator:
  return np.random.default_rng([SEED] + [zlib.crc32(str(p).encode()) for p in parts])


def seeded_array(key: str, shape: tuple[int, ...]) -> np.ndarray:
  """A value for official key `key`: fan-in uniform for matrices, near-identity for norms."""
  rng, leaf = _rng(key), key.rsplit('.', 1)[-1]
  if len(shape) >= 2:
    value = rng.uniform(-1, 1, shape) / math.sqrt(math.prod(shape[1:]))
  elif leaf == 'running_var':
    value = rng.uniform(0.5, 1.5, shape)
  elif leaf == 'weight':
    value = 1.0 + 0.1 * rng.uniform(-1, 1, shape)
  else:
    value = 0.1 * rng.uniform(-1, 1, shape)
  return value.astype(np.float32)


def seeded_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
  return {key: seeded_array(key, tuple(shape)) for key, shape in shapes.items()}


def frames() -> np.ndarray:
  """Normalised frames (T, 3, H, W) as the official loader gives them."""
  return _rng('frames').standard_normal((FRAMES, 3, HEIGHT, WIDTH)).astype(np.float32)


def swin_features() -> np.ndarray:
  """Stand-in for the frozen Video-Swin stage-4 output (T, 768, H/32, W/32)."""
  return _rng('swin').standard_normal(
      (FRAMES, SWIN_DIMS, HEIGHT // 32, WIDTH // 32)).astype(np.float32)
