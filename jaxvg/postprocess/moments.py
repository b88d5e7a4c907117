"""Host-side decoding of R²-Tuning outputs into moments (official `R2Tuning.forward` test branch
and `Grounding.evaluate`): decode, top-k, clamp, round to unit, NMS, QVH submission rows."""
from __future__ import annotations

from typing import Any, Mapping

import ml_collections
import numpy as np

from jaxvg.models.r2tuning import make_points


def decode_moments(cls_logits: np.ndarray, reg: np.ndarray, points: np.ndarray, fps: float,
                   max_num_moment: int, valid: np.ndarray | None = None) -> np.ndarray:
  """Top `max_num_moment` windows of one sample, (M, 3) [start_s, end_s, score] by score desc.

  start = (p − s·d_s)/fps, end = (p + s·d_e)/fps, score = σ(logit); cls_logits (N,),
  reg (N, 2) = (d_s, d_e), points (N, 4), valid (N,) bool drops points (padding).
  """
  pos, stride = points[:, 0], points[:, 3]
  start = (pos - stride * reg[:, 0]) / fps
  end = (pos + stride * reg[:, 1]) / fps
  score = 1.0 / (1.0 + np.exp(-cls_logits.astype(np.float64)))
  moments = np.stack([start, end, score], axis=1)
  if valid is not None:
    moments = moments[valid]
  order = np.argsort(-moments[:, 2], kind='stable')
  return moments[order[:max_num_moment]]


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


def postprocess(outputs: Mapping[str, np.ndarray], metadata: Mapping[str, Any],
                config: ml_collections.ConfigDict) -> list[dict]:
  """Model outputs (numpy, batch-major) -> QVHighlights submission rows for the real samples.

  metadata: 'qid', 'vid', 'duration', 'fps' (length B) and optionally 'sample_mask' (B,) (else
  outputs['sample_mask'], else all real). Rows: qid, vid, pred_saliency_scores (true length) and,
  with the coord head, pred_relevant_windows [[s, e, score], ...].
  """
  post = config.post
  video_mask = np.asarray(outputs['video_mask']).astype(bool)
  b, t = video_mask.shape
  sample_mask = metadata.get('sample_mask', outputs.get('sample_mask'))
  sample_mask = np.ones(b, bool) if sample_mask is None else np.asarray(sample_mask).astype(bool)
  has_windows = 'reg' in outputs
  if has_windows:
    points = make_points(t, config.model.strides)
  rows = []
  for i in np.flatnonzero(sample_mask):
    row = dict(qid=_scalar(metadata['qid'][i]), vid=_scalar(metadata['vid'][i]))
    if has_windows:
      moments = decode_moments(np.asarray(outputs['cls_logits'][i]), np.asarray(outputs['reg'][i]),
                               points, float(metadata['fps'][i]), post.max_num_moment,
                               np.asarray(outputs['point_mask'][i]).astype(bool))
      moments = clamp_and_round(moments, float(metadata['duration'][i]), post.unit)
      moments = nms(moments, post.nms_type, post.nms_threshold)
      row['pred_relevant_windows'] = moments.tolist()
    length = int(video_mask[i].sum())
    row['pred_saliency_scores'] = np.asarray(outputs['saliency'][i][:length], np.float64).tolist()
    rows.append(row)
  return rows


def _scalar(value: Any) -> Any:
  """numpy scalars -> Python (json-serialisable) values."""
  return value.item() if isinstance(value, np.generic) else value

