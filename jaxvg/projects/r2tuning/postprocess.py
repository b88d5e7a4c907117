"""Host-side decoding of R²-Tuning outputs into moments (official `R2Tuning.forward` test branch
and `Grounding.evaluate`): decode points, top-k, then the shared clamp, rounding and NMS of
`jaxvg.postprocess.moments`, into QVHighlights submission rows."""
from __future__ import annotations

from typing import Any, Mapping

import ml_collections
import numpy as np

from jaxvg.postprocess.moments import clamp_and_round, nms
from jaxvg.projects.r2tuning.model import make_points


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

