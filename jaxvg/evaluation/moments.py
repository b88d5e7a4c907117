"""Moment-retrieval metrics on padded arrays: R1, R@k, mIoU and detection mAP.

All queries are scored at once on (Q, K, 2) window arrays with masks, replacing the official
per-query Python loops and process pools with a handful of NumPy ops. The numbers are the
official ones (Moment-DETR `standalone_eval`, UniVTG/R²-Tuning `eval.py`); where the official
code has a quirk it is kept and said so.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np


def pack_windows(window_lists: Sequence[Sequence[Sequence[float]]], width: int,
                 max_windows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Ragged lists of windows -> ((N, K, width) float64, (N, K) bool mask), keeping list order.

  `max_windows` keeps the first windows of each list (the official truncation before sorting).
  """
  lists = [ws if max_windows is None else ws[:max_windows] for ws in window_lists]
  lengths = np.fromiter((len(ws) for ws in lists), dtype=np.int64, count=len(lists))
  k = max(int(lengths.max(initial=0)), 1)
  flat = np.array([w[:width] for w in itertools.chain.from_iterable(lists)], dtype=np.float64)
  mask = np.arange(k)[None, :] < lengths[:, None]
  windows = np.zeros((len(lists), k, width), dtype=np.float64)
  windows[mask] = flat.reshape(-1, width)
  return windows, mask


def iou_cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """IoU of every window of `a` (..., N, 2) with every window of `b` (..., M, 2): (..., N, M).

  A zero union (two empty windows at one point) gives 0 where the official code gives NaN.
  """
  left = np.maximum(a[..., :, None, 0], b[..., None, :, 0])
  right = np.minimum(a[..., :, None, 1], b[..., None, :, 1])
  inter = np.clip(right - left, 0, None)
  union = (a[..., :, None, 1] - a[..., :, None, 0]) + (b[..., None, :, 1] - b[..., None, :, 0]) - inter
  return np.divide(inter, union, out=np.zeros_like(inter), where=union != 0)


def iou_paired_official(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """IoU of paired windows (..., 2) with the official union max(ends) - min(starts).

  The official comment calls it "not the correct union"; it equals the true union whenever the
  windows overlap, and the intersection is 0 otherwise, so the value is the true IoU.
  """
  inter = np.maximum(0, np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]))
  union = np.maximum(a[..., 1], b[..., 1]) - np.minimum(a[..., 0], b[..., 0])
  return np.divide(inter, union, out=np.zeros_like(inter), where=union != 0)


def top1_iou(pred_first: np.ndarray, gt: np.ndarray, gt_mask: np.ndarray) -> np.ndarray:
  """IoU of the first predicted window (Q, 2) with its best-matching GT window: (Q,).

  Official R1: the GT window is the first argmax of IoU with the prediction, then the pair is
  scored with the official paired IoU.
  """
  ious = np.where(gt_mask, iou_cross(pred_first[:, None, :], gt)[:, 0, :], -np.inf)
  best = np.argmax(ious, axis=1)
  gt_best = np.take_along_axis(gt, best[:, None, None], axis=1)[:, 0]
  return iou_paired_official(pred_first, gt_best)


def topk_best_iou(pred: np.ndarray, pred_mask: np.ndarray, gt: np.ndarray,
                  gt_mask: np.ndarray) -> np.ndarray:
  """R@k as UniVTG/R²-Tuning code it: IoU of the best (prediction, GT) pair among the given
  predictions (Q, K, 2), the first maximum in row-major order: (Q,)."""
  q, k, _ = pred.shape
  ious = iou_cross(pred, gt)
  ious = np.where(pred_mask[:, :, None] & gt_mask[:, None, :], ious, -np.inf).reshape(q, -1)
  flat = np.argmax(ious, axis=1)
  pred_best = np.take_along_axis(pred, (flat // gt.shape[1])[:, None, None], axis=1)[:, 0]
  gt_best = np.take_along_axis(gt, (flat % gt.shape[1])[:, None, None], axis=1)[:, 0]
  return iou_paired_official(pred_best, gt_best)


def detection_ap(pred: np.ndarray, pred_score: np.ndarray, pred_mask: np.ndarray,
                 gt: np.ndarray, gt_mask: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
  """Per-query ActivityNet detection AP at each IoU threshold: (Q, T).

  Args:
    pred: (Q, P, 2) predicted windows; pred_score: (Q, P); pred_mask: (Q, P).
    gt: (Q, G, 2) GT windows; gt_mask: (Q, G), at least one true per query.
    thresholds: (T,) IoU thresholds.

  As `compute_average_precision_detection` (MMAction2): predictions sorted by descending score
  (stable), each greedily matched to the unmatched GT of highest IoU >= threshold, VOC-2011
  interpolated precision, recall over the query's GT windows. Among GT windows of exactly equal
  IoU the last one is taken (the official order follows NumPy's unstable argsort there).
  The loop runs over the P <= 10 ranks; queries, thresholds and GT windows are vectorised.
  """
  q, p, _ = pred.shape
  order = np.argsort(np.where(pred_mask, -pred_score, np.inf), axis=1, kind='stable')
  pred = np.take_along_axis(pred, order[:, :, None], axis=1)
  pred_mask = np.take_along_axis(pred_mask, order, axis=1)
  thresholds = np.asarray(thresholds, dtype=np.float64)
  # GT axis reversed, so that argmax (first maximum) picks the last of equal IoUs.
  ious = np.where(gt_mask[:, None, ::-1], iou_cross(pred, gt[:, ::-1]), -np.inf)  # (Q, P, G)
  above = ious[:, :, None, :] >= thresholds[None, None, :, None]  # (Q, P, T, G)
  locked = np.zeros((q,) + above.shape[2:], dtype=bool)  # (Q, T, G)
  tp = np.zeros((q, thresholds.size, p), dtype=bool)
  rows = np.arange(q)[:, None]
  cols = np.arange(thresholds.size)[None, :]
  for rank in range(p):
    eligible = above[:, rank] & ~locked
    chosen = np.argmax(np.where(eligible, ious[:, rank, None, :], -np.inf), axis=-1)  # (Q, T)
    hit = eligible.any(-1) & pred_mask[:, rank, None]
    locked[rows, cols, chosen] |= hit
    tp[:, :, rank] = hit
  fp = pred_mask[:, None, :] & ~tp
  tp_cum = np.cumsum(tp, axis=-1, dtype=np.float64)
  fp_cum = np.cumsum(fp, axis=-1, dtype=np.float64)
  # Padding ranks repeat the last real (precision, recall) point, which changes no term below.
  recall = tp_cum / gt_mask.sum(1)[:, None, None]
  precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
  zeros = np.zeros((q, thresholds.size, 1))
  m_precision = np.concatenate([zeros, precision, zeros], axis=-1)
  m_recall = np.concatenate([zeros, recall, zeros + 1], axis=-1)
  m_precision = np.maximum.accumulate(m_precision[..., ::-1], axis=-1)[..., ::-1]
  return np.sum((m_recall[..., 1:] - m_recall[..., :-1]) * m_precision[..., 1:], axis=-1)
