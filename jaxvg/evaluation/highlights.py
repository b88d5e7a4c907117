"""Highlight-detection metrics on padded (N, C) arrays: QVHighlights HD mAP / HIT@1, and the
UMT-protocol AP of YouTube Highlights and TVSum.

Rows are videos (or (query, annotator) columns), C the padded clip axis; `mask` marks real clips.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np


def pack_scores(score_lists: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
  """Ragged score lists -> ((N, C) float64 zero-padded, (N, C) bool mask)."""
  lengths = np.fromiter(map(len, score_lists), dtype=np.int64, count=len(score_lists))
  width = max(int(lengths.max(initial=0)), 1)
  mask = np.arange(width)[None, :] < lengths[:, None]
  scores = np.zeros(mask.shape, dtype=np.float64)
  scores[mask] = np.fromiter(itertools.chain.from_iterable(score_lists), dtype=np.float64,
                             count=int(lengths.sum()))
  return scores, mask


def _descending_order(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """(N, C) clip order by descending score (stable: ties keep clip order), padding last."""
  return np.argsort(np.where(mask, -scores, np.inf), axis=1, kind='stable')


def _take(array: np.ndarray, order: np.ndarray) -> np.ndarray:
  """Reorders the clip axis 1 of (N, C, ...) by `order` (N, C)."""
  return np.take_along_axis(array, order.reshape(order.shape + (1,) * (array.ndim - 2)), axis=1)


def interpolated_ap(labels: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Moment-DETR `get_ap` of each (row, column): labels (N, C, K), scores (N, C) -> (N, K).

  Equals the sklearn-based original exactly. Per row and column: if all labels are 0 the AP is 0,
  if all are 1 it is 1; otherwise the precision-recall curve of
  `sklearn.metrics.precision_recall_curve` (one point per distinct score), precision made
  monotone with a running max towards lower recall, averaged over the points where recall
  increases. The K columns (annotators, thresholds) share one sort of the scores.
  """
  order = _descending_order(scores, mask)
  scores, mask = _take(scores, order), _take(mask, order)
  labels = _take(labels.astype(bool) & mask[:, :, None], order)
  n = mask.shape[1]
  valid_next = np.concatenate([mask[:, 1:], np.zeros_like(mask[:, :1])], axis=1)
  next_score = np.concatenate([scores[:, 1:], scores[:, -1:]], axis=1)
  is_end = (mask & (~valid_next | (next_score != scores)))[:, :, None]  # last of a tie group
  tps = np.cumsum(labels, axis=1, dtype=np.float64)  # (N, C, K)
  precision = np.where(is_end, tps / np.arange(1, n + 1)[None, :, None], 0.0)
  precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
  end_tps = np.where(is_end, tps, 0.0)
  previous_end_tps = np.concatenate(
      [np.zeros_like(end_tps[:, :1]), np.maximum.accumulate(end_tps, axis=1)[:, :-1]], axis=1)
  recall_step = is_end & (tps > previous_end_tps)
  steps = recall_step.sum(1)
  ap = np.sum(np.where(recall_step, precision, 0.0), axis=1) / np.maximum(steps, 1)
  positives = tps[:, -1]
  ap = np.where(positives == mask.sum(1)[:, None], 1.0, ap)
  return np.where(positives == 0, 0.0, ap)


def hit_at_one(argmax_clip: np.ndarray, positive: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """1 where the top-scored clip (Q,) is positive (Q, C) and inside the video, else 0: (Q,)."""
  inside = argmax_clip < mask.sum(1)
  clip = np.minimum(argmax_clip, positive.shape[1] - 1)
  return (inside & np.take_along_axis(positive, clip[:, None], axis=1)[:, 0]).astype(np.float64)


def trapezoid_ap(labels: np.ndarray, scores: np.ndarray, mask: np.ndarray,
                 top_k: int | None = None) -> np.ndarray:
  """UMT-protocol AP of each (row, column): labels (N, C, K), scores (N, C) -> (N, K).

  Clips ranked by descending predicted score (stable; the official torch.argsort leaves ties
  unordered), optionally cut to the top k; recall over the positives *within* the ranking,
  AP = sum_i (rec_i - rec_{i-1}) (prec_{i-1} + prec_i) / 2 with prec_0 = 1; 0 without positives.
  """
  order = _descending_order(scores, mask)
  mask = _take(mask, order)
  labels = _take(labels.astype(bool) & mask[:, :, None], order)
  if top_k is not None:
    mask, labels = mask[:, :top_k], labels[:, :top_k]
  hits = np.cumsum(labels, axis=1, dtype=np.float64)  # (N, C, K)
  num_gt = hits[:, -1:]
  recall = hits / np.maximum(num_gt, 1)
  precision = hits / np.arange(1, labels.shape[1] + 1)[None, :, None]
  previous_recall = np.concatenate([np.zeros_like(recall[:, :1]), recall[:, :-1]], axis=1)
  previous_precision = np.concatenate([np.ones_like(recall[:, :1]), precision[:, :-1]], axis=1)
  terms = (recall - previous_recall) * (previous_precision + precision) / 2
  ap = np.sum(np.where(mask[:, :, None], terms, 0.0), axis=1)
  return np.where(num_gt[:, 0] > 0, ap, 0.0)


def lower_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """torch.median along axis 1 (the lower of the two middle values), ignoring masked entries.

  values: (N, C, A) -> (N, A).
  """
  ordered = np.sort(np.where(mask[:, :, None], values, np.inf), axis=1)
  middle = (mask.sum(1) - 1) // 2
  return np.take_along_axis(ordered, middle[:, None, None], axis=1)[:, 0]
