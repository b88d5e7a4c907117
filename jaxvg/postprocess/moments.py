"""Moment post-processing shared by temporal-grounding systems (official R²-Tuning
`Grounding.evaluate`): clamp to the video, round to the benchmark's unit, greedy NMS."""
from __future__ import annotations

import numpy as np


def clamp_and_round(moments: np.ndarray, duration: float, unit: float) -> np.ndarray:
  """Clamps boundaries to [0, duration]; windows whose end was inside the video (end < duration
  before clamping) get both ends rounded to a multiple of `unit` (0 = no rounding)."""
  moments = moments.copy()
  inside = moments[:, 1] < duration
  moments[:, :2] = np.clip(moments[:, :2], 0.0, duration)
  if unit and unit > 0:
    moments[inside, :2] = np.round(moments[inside, :2] / unit) * unit
  return moments


def temporal_iou(window: np.ndarray, others: np.ndarray) -> np.ndarray:
  """IoU of one window (2,) with others (M, 2); 0 where the union is empty (0/0)."""
  inter = np.clip(np.minimum(window[1], others[:, 1]) - np.maximum(window[0], others[:, 0]),
                  0.0, None)
  union = (window[1] - window[0]) + (others[:, 1] - others[:, 0]) - inter
  return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms(moments: np.ndarray, kind: str, threshold: float) -> np.ndarray:
  """Official greedy NMS that never deletes: bring the best remaining window forward, then
  'normal' zeroes the scores of later windows with IoU ≥ threshold, 'linear' scales them by
  (1 − IoU). Returns all windows re-sorted by score."""
  if kind not in ('normal', 'linear'):
    raise ValueError(f"config.post.nms_type must be 'normal' or 'linear', got {kind!r}")
  m = moments.copy()
  for i in range(len(m)):
    best = i + int(np.argmax(m[i:, 2]))
    m[[i, best]] = m[[best, i]]
    iou = temporal_iou(m[i, :2], m[i + 1:, :2])
    if kind == 'normal':
      m[i + 1:, 2] = np.where(iou >= threshold, 0.0, m[i + 1:, 2])
    else:
      m[i + 1:, 2] *= 1.0 - iou
  return m[np.argsort(-m[:, 2], kind='stable')]
