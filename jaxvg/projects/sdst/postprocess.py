"""SDST outputs -> QVHighlights submission rows (host side, numpy).

The last step's M spans are the moments: (centre, width) of the true length -> seconds, scored by
σ(class) or σ(class)·σ(actionness) (`post.score`), ranked, clamped to the video and rounded to
the benchmark's unit, optionally NMS-ed (the pieces shared with R²-Tuning:
`jaxvg.postprocess.moments`). Saliency: the last step's per-clip cosine, cut to the true length.
"""
from __future__ import annotations

from typing import Any, Mapping

import ml_collections
import numpy as np

from jaxvg.postprocess.moments import clamp_and_round, nms

SCORES = ('cls', 'cls_x_actionness')


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def decode_moments(logits: np.ndarray, actionness: np.ndarray, spans: np.ndarray,
                   num_clips: int, fps: float, score: str, max_num_moment: int) -> np.ndarray:
  """One sample's last step, (M,), (M,), (M, 2) -> (≤ max_num_moment, 3) [start_s, end_s, score]
  sorted by score (stable)."""
  if score not in SCORES:
    raise ValueError(f'config.post.score must be one of {SCORES}, got {score!r}')
  conf = _sigmoid(logits)
  if score == 'cls_x_actionness':
    conf = conf * _sigmoid(actionness)
  seconds = num_clips / fps
  centre, width = spans[:, 0].astype(np.float64), spans[:, 1].astype(np.float64)
  moments = np.stack([(centre - width / 2) * seconds, (centre + width / 2) * seconds, conf], 1)
  order = np.argsort(-conf, kind='stable')
  return moments[order[:max_num_moment]]


def postprocess(outputs: Mapping[str, np.ndarray], metadata: Mapping[str, Any],
                config: ml_collections.ConfigDict) -> list[dict]:
  """Model outputs (numpy, batch-major) -> rows for the real samples: qid, vid,
  pred_relevant_windows [[start, end, score], ...], pred_saliency_scores (true length).

  metadata: 'qid', 'vid', 'duration', 'fps' (length B), optionally 'sample_mask' (B,).
  """
  post = config.post
  video_mask = np.asarray(outputs['video_mask']).astype(bool)
  b = video_mask.shape[0]
  sample_mask = metadata.get('sample_mask', outputs.get('sample_mask'))
  sample_mask = np.ones(b, bool) if sample_mask is None else np.asarray(sample_mask).astype(bool)
  rows = []
  for i in np.flatnonzero(sample_mask):
    length = int(video_mask[i].sum())
    moments = decode_moments(np.asarray(outputs['logits'][i, -1]),
                             np.asarray(outputs['actionness'][i, -1]),
                             np.asarray(outputs['spans'][i, -1]), length,
                             float(metadata['fps'][i]), post.score, post.max_num_moment)
    moments = clamp_and_round(moments, float(metadata['duration'][i]), post.unit)
    if post.nms_type != 'none':
      moments = nms(moments, post.nms_type, post.nms_threshold)
    rows.append(dict(
        qid=_scalar(metadata['qid'][i]), vid=_scalar(metadata['vid'][i]),
        pred_relevant_windows=moments.tolist(),
        pred_saliency_scores=np.asarray(outputs['saliency'][i][:length], np.float64).tolist()))
  return rows


def _scalar(value: Any) -> Any:
  """numpy scalars -> Python (json-serialisable) values."""
  return value.item() if isinstance(value, np.generic) else value
