"""Spatio-temporal video grounding metrics: m_tIoU, m_vIoU, vIoU@R and gt_vIoU over tubes.

As the HC-STVG / VidSTG evaluators of TubeDETR, CG-STVG and the zero-shot STVG code compute them.
For a predicted span [ps, pe] and a GT span [gs, ge] (annotation frame indices):
  tIoU = (min_end - max_start) / ((ge - gs) + (pe - ps) - (min_end - max_start)), 0 without overlap
  vIoU = sum over frames t in S_i that have a GT box of IoU(pred box_t, GT box_t) / |S_u|
with S_u = min_start..max_end and S_i = max_start..min_end, both inclusive for HC-STVG and
half-open (`range(a, b)`) for VidSTG. vIoU@R counts vIoU > R (strict). gt_vIoU is the mean box
IoU over the GT frames (the spatial-only upper bound).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from jaxvg.evaluation.io import EvaluationInputError, Locator, match_qids

CONVENTIONS = ('hcstvg', 'vidstg')
VIOU_THRESHOLDS = (0.3, 0.5)
CHUNK = 256  # videos packed onto one dense frame axis at a time


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """IoU of paired xyxy boxes (..., 4) -> (...); 0 where the union is empty."""
  inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
  inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
  inter = inter_w * inter_h
  area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
  area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
  union = area_a + area_b - inter
  return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def tube_scores(pred_span: np.ndarray, gt_span: np.ndarray, pred_boxes: np.ndarray,
                gt_boxes: np.ndarray, gt_box_mask: np.ndarray,
                convention: str) -> dict[str, np.ndarray]:
  """Per-video tIoU, vIoU and gt_vIoU, each (N,).

  Args:
    pred_span, gt_span: (N, 2) frame indices [start, end].
    pred_boxes, gt_boxes: (N, F, 4) xyxy boxes on the frame axis 0..F-1.
    gt_box_mask: (N, F) frames that carry a GT box.
    convention: 'hcstvg' (inclusive frame ranges) or 'vidstg' (half-open).
  """
  if convention not in CONVENTIONS:
    raise ValueError(f'convention must be one of {CONVENTIONS}, got {convention!r}')
  pred_span = np.asarray(pred_span, dtype=np.float64)
  gt_span = np.asarray(gt_span, dtype=np.float64)
  max_start = np.maximum(pred_span[:, 0], gt_span[:, 0])
  min_end = np.minimum(pred_span[:, 1], gt_span[:, 1])
  min_start = np.minimum(pred_span[:, 0], gt_span[:, 0])
  max_end = np.maximum(pred_span[:, 1], gt_span[:, 1])
  inter = min_end - max_start
  union = (gt_span[:, 1] - gt_span[:, 0]) + (pred_span[:, 1] - pred_span[:, 0]) - inter
  t_iou = np.where(inter > 0, inter / np.where(union > 0, union, 1), 0.0)

  frames = np.arange(gt_box_mask.shape[1])[None, :]
  inclusive = convention == 'hcstvg'
  in_inter = (frames >= max_start[:, None]) & (
      frames <= min_end[:, None] if inclusive else frames < min_end[:, None])
  union_frames = max_end - min_start + (1 if inclusive else 0)
  ious = box_iou(pred_boxes, gt_boxes) * gt_box_mask
  v_iou = np.sum(np.where(in_inter, ious, 0.0), axis=1) / np.maximum(union_frames, 1)
  gt_v_iou = ious.sum(1) / np.maximum(gt_box_mask.sum(1), 1)
  return {'tIoU': t_iou, 'vIoU': v_iou, 'gt_vIoU': gt_v_iou}


def summarize(scores: dict[str, np.ndarray],
              thresholds: Sequence[float] = VIOU_THRESHOLDS) -> dict[str, float]:
  """Means over videos in percent: m_tIoU, m_vIoU, vIoU@R (strict >), gt_vIoU."""
  out = {'m_tIoU': 100 * float(np.mean(scores['tIoU'])),
         'm_vIoU': 100 * float(np.mean(scores['vIoU']))}
  out.update({f'vIoU@{r}': 100 * float(np.mean(scores['vIoU'] > r)) for r in thresholds})
  out['gt_vIoU'] = 100 * float(np.mean(scores['gt_vIoU']))
  return out


def _pack_tube(rows: Sequence[dict], num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Rows {span, frame_ids, boxes} -> spans (N, 2), boxes (N, F, 4), box mask (N, F)."""
  spans = np.zeros((len(rows), 2))
  boxes = np.zeros((len(rows), num_frames, 4))
  mask = np.zeros((len(rows), num_frames), dtype=bool)
  for i, row in enumerate(rows):
    spans[i] = row['span']
    ids = np.asarray(row['frame_ids'], dtype=np.int64)
    boxes[i, ids] = np.asarray(row['boxes'], dtype=np.float64).reshape(-1, 4)
    mask[i, ids] = True
  return spans, boxes, mask


def _check_tube(row: dict, where: str) -> None:
  span, ids, boxes = row.get('span'), row.get('frame_ids'), row.get('boxes')
  ok = (isinstance(span, (list, tuple)) and len(span) == 2 and span[0] <= span[1]
        and isinstance(ids, list) and isinstance(boxes, list) and len(ids) == len(boxes)
        and all(isinstance(f, int) and f >= 0 for f in ids)
        and all(isinstance(b, (list, tuple)) and len(b) == 4 for b in boxes))
  if not ok:
    raise EvaluationInputError(
        f'{where}: qid {row.get("qid")!r}: a tube needs "span" [start <= end], "frame_ids" '
        f'(non-negative ints) and one [x1, y1, x2, y2] in "boxes" per frame id')


def evaluate_tubes(submission: Sequence[dict], ground_truth: Sequence[dict], convention: str,
                   submission_where: Locator | None = None,
                   gt_where: Locator | None = None) -> dict[str, Any]:
  """Rows {qid, span, frame_ids, boxes} for predictions and GT -> {'brief': {...}}."""
  submission_where = submission_where or Locator('submission')
  gt_where = gt_where or Locator('ground truth')
  sub_index, _ = match_qids(submission, ground_truth, submission_where, gt_where)
  for i, row in enumerate(ground_truth):
    _check_tube(row, gt_where(i))
  rows = [submission[sub_index[row['qid']]] for row in ground_truth]
  for row in rows:
    _check_tube(row, submission_where(sub_index[row['qid']]))
  chunks = [_chunk_scores(rows[i:i + CHUNK], ground_truth[i:i + CHUNK], convention)
            for i in range(0, len(rows), CHUNK)]
  if not chunks:
    raise EvaluationInputError(f'{gt_where(0)}: no ground-truth tubes to evaluate')
  scores = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
  return {'brief': summarize(scores)}


def _chunk_scores(rows: Sequence[dict], ground_truth: Sequence[dict],
                  convention: str) -> dict[str, np.ndarray]:
  """tube_scores of a few videos on their own frame axis (a dense axis over a whole test set of
  long videos would take gigabytes)."""
  num_frames = 1 + max(max(r['frame_ids'], default=0) for r in list(rows) + list(ground_truth))
  pred_span, pred_boxes, _ = _pack_tube(rows, num_frames)
  gt_span, gt_boxes, gt_mask = _pack_tube(ground_truth, num_frames)
  return tube_scores(pred_span, gt_span, pred_boxes, gt_boxes, gt_mask, convention)
