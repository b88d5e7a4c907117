"""The official evaluation protocols, assembled from the array metrics.

- `qvhighlights`: Moment-DETR `standalone_eval/eval.py` (`eval_submission`), same keys, key order
  and rounding, so its JSON output is byte-identical to the official one.
- `moment_retrieval`: UniVTG / R²-Tuning `vtg_eval` (Charades-STA, TACoS, Ego4D-NLQ,
  ActivityNet): adds R1@0.3, mIoU and R5, opens the long bucket to infinity.
- `youtube_highlights`, `tvsum`: the UMT protocol as R²-Tuning codes it, per domain.

Inputs are validated already (`io.validate_submission`); rows are aligned on the GT order.
"""
from __future__ import annotations

import collections
import itertools
from typing import Any, Callable, Sequence

import numpy as np

from jaxvg.evaluation import highlights
from jaxvg.evaluation import moments
from jaxvg.evaluation.io import EvaluationInputError, Locator

MAP_THRESHOLDS = tuple(float(f'{t:.2f}') for t in np.linspace(0.5, 0.95, 10))
QVH_R1_THRESHOLDS = MAP_THRESHOLDS
R2_R1_THRESHOLDS = tuple(float(f'{t:.2f}') for t in np.linspace(0.3, 0.95, 14))
MAX_PRED_WINDOWS = 10
HD_MIN_SCORES = (('Fair', 2), ('Good', 3), ('VeryGood', 4))
QVH_CLIP_SECONDS = 2
TVSUM_TOP_K = 5


def percent(value: float) -> float:
  """The official formatting: 100 x value rounded to two decimals through a string."""
  return float(f'{100 * value:.2f}')


def _aligned(submission: Sequence[dict], sub_index: dict[Any, int],
             ground_truth: Sequence[dict]) -> list[dict]:
  """Submission rows reordered to follow the ground truth."""
  return [submission[sub_index[row['qid']]] for row in ground_truth]


def _gt_windows(ground_truth: Sequence[dict], where: Locator) -> tuple[np.ndarray, np.ndarray]:
  for i, row in enumerate(ground_truth):
    windows = row.get('relevant_windows')
    if not isinstance(windows, list) or not windows:
      raise EvaluationInputError(
          f'{where(i)}: qid {row.get("qid")!r}: ground truth needs a non-empty '
          f'"relevant_windows" for moment retrieval')
  return moments.pack_windows([row['relevant_windows'] for row in ground_truth], width=2)


def _moment_block(pred: np.ndarray, pred_mask: np.ndarray, gt: np.ndarray, gt_mask: np.ndarray,
                  r1_thresholds: Sequence[float], extended: bool) -> dict[str, Any]:
  """One length bucket: MR-mAP (+ MR-R1; with `extended`, MR-mIoU and MR-R5 as R²-Tuning)."""
  ap = moments.detection_ap(pred[..., :2], pred[..., 2], pred_mask, gt, gt_mask,
                            np.array(MAP_THRESHOLDS))
  ap_per_threshold = ap.mean(0)
  mr_map = {str(t): percent(v) for t, v in zip(MAP_THRESHOLDS, ap_per_threshold)}
  mr_map['average'] = percent(np.mean(ap_per_threshold))
  iou1 = moments.top1_iou(pred[:, 0, :2], gt, gt_mask)
  mr_r1 = {str(t): percent(np.mean(iou1 >= t)) for t in r1_thresholds}
  if not extended:
    return {'MR-mAP': mr_map, 'MR-R1': mr_r1}
  iou5 = moments.topk_best_iou(pred[:, :5, :2], pred_mask[:, :5], gt, gt_mask)
  return {'MR-mIoU': percent(np.mean(iou1)), 'MR-mAP': mr_map, 'MR-R1': mr_r1,
          'MR-R5': {str(t): percent(np.mean(iou5 >= t)) for t in r1_thresholds}}


def _moment_retrieval(rows: Sequence[dict], ground_truth: Sequence[dict], gt_where: Locator,
                      ranges: Sequence[tuple[str, float, float]], full_range: tuple[float, float],
                      r1_thresholds: Sequence[float], extended: bool) -> dict[str, Any]:
  """All length buckets. A query enters a bucket with its GT windows of length in (lo, hi]."""
  pred, pred_mask = moments.pack_windows([r['pred_relevant_windows'] for r in rows], width=3,
                                         max_windows=MAX_PRED_WINDOWS)
  gt, gt_mask = _gt_windows(ground_truth, gt_where)
  lengths = gt[..., 1] - gt[..., 0]
  results = {}
  for name, lo, hi in ranges:
    if (lo, hi) == full_range:  # the official shortcut: the full range keeps every window
      in_range = gt_mask
    else:
      in_range = gt_mask & (lengths > lo) & (lengths <= hi)
    queries = in_range.any(1)
    if not queries.any():
      if extended:  # R²-Tuning falls back to the whole set when a bucket is empty
        in_range, queries = gt_mask, np.ones_like(queries)
      else:  # the official script crashes here; report NaN instead
        results[name] = {'MR-mAP': {**{str(t): float('nan') for t in MAP_THRESHOLDS},
                                    'average': float('nan')},
                         'MR-R1': {str(t): float('nan') for t in r1_thresholds}}
        continue
    results[name] = _moment_block(pred[queries], pred_mask[queries], gt[queries],
                                  in_range[queries], r1_thresholds, extended)
  return results


def _qvh_gt_saliency(ground_truth: Sequence[dict], where: Locator) -> tuple[np.ndarray, np.ndarray]:
  """Official `mk_gt_scores`: (Q, C, 3) annotator scores, zero outside relevant clips; mask."""
  num_clips = np.array([int(row['duration'] / QVH_CLIP_SECONDS) for row in ground_truth])
  ids = [row.get('relevant_clip_ids') or [] for row in ground_truth]
  values = [row.get('saliency_scores') or [] for row in ground_truth]
  counts = np.array([len(v) for v in ids])
  flat_ids = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=counts.sum())
  query = np.repeat(np.arange(len(ground_truth)), counts)
  bad = ((counts != [len(v) for v in values]) | np.bincount(
      query, (flat_ids < 0) | (flat_ids >= num_clips[query]), len(ground_truth)).astype(bool))
  if bad.any():
    i = int(np.argmax(bad))
    raise EvaluationInputError(
        f'{where(i)}: qid {ground_truth[i].get("qid")!r}: relevant_clip_ids must match '
        f'saliency_scores and lie in [0, {num_clips[i]}) (int(duration / {QVH_CLIP_SECONDS}))')
  width = max(int(num_clips.max(initial=0)), 1)
  scores = np.zeros((len(ground_truth), width, 3), dtype=np.float64)
  scores[query, flat_ids] = np.array(list(itertools.chain.from_iterable(values)),
                                     dtype=np.float64).reshape(-1, 3)
  return scores, np.arange(width)[None, :] < num_clips[:, None]


def _qvh_highlights(rows: Sequence[dict], ground_truth: Sequence[dict],
                    gt_where: Locator) -> dict[str, dict[str, float]]:
  """HL-min-{Fair,Good,VeryGood}: HD mAP (per annotator, padded/truncated) and HIT@1."""
  gt_scores, clip_mask = _qvh_gt_saliency(ground_truth, gt_where)
  pred_lists = [r['pred_saliency_scores'] for r in rows]
  raw, raw_mask = highlights.pack_scores(pred_lists)
  argmax_clip = np.argmax(np.where(raw_mask, raw, -np.inf), axis=1)
  fitted = np.zeros(clip_mask.shape)
  width = min(raw.shape[1], fitted.shape[1])
  fitted[:, :width] = raw[:, :width]  # truncate or zero-pad to the clip count (official)
  fitted = np.where(clip_mask, fitted, 0.0)
  min_scores = np.array([m for _, m in HD_MIN_SCORES])
  positive = gt_scores[:, :, None, :] >= min_scores[None, None, :, None]  # (Q, C, 3 levels, 3)
  q, c = clip_mask.shape
  ap = highlights.interpolated_ap(positive.reshape(q, c, -1), fitted, clip_mask)
  ap = ap.reshape(q, len(HD_MIN_SCORES), 3)
  results = {}
  for level, (name, _) in enumerate(HD_MIN_SCORES):
    hit = highlights.hit_at_one(argmax_clip, positive[:, :, level].any(-1), clip_mask)
    results[f'HL-min-{name}'] = {'HL-mAP': percent(np.mean(ap[:, level])),
                                 'HL-Hit1': percent(np.mean(hit))}
  return results


def _assemble(brief: dict[str, float], metrics: dict[str, Any]) -> dict[str, Any]:
  """The official layout: `brief` first, then the other blocks sorted by key."""
  return {'brief': brief, **dict(sorted(metrics.items()))}


def _hl_brief(hl: dict[str, dict[str, float]]) -> dict[str, float]:
  return {f'{k}-{sub.split("-")[1]}': v for k, block in hl.items() for sub, v in block.items()}


def qvhighlights(submission: Sequence[dict], sub_index: dict[Any, int],
                 ground_truth: Sequence[dict], gt_where: Locator) -> dict[str, Any]:
  """Moment-DETR `eval_submission` (match_number=True)."""
  rows = _aligned(submission, sub_index, ground_truth)
  metrics, brief = {}, {}
  if 'pred_relevant_windows' in submission[0]:
    ranges = (('short', 0, 10), ('middle', 10, 30), ('long', 30, 150), ('full', 0, 150))
    mr = _moment_retrieval(rows, ground_truth, gt_where, ranges, (0, 150), QVH_R1_THRESHOLDS,
                           extended=False)
    metrics.update(mr)
    brief.update(sorted({
        'MR-full-mAP': mr['full']['MR-mAP']['average'],
        'MR-full-mAP@0.5': mr['full']['MR-mAP']['0.5'],
        'MR-full-mAP@0.75': mr['full']['MR-mAP']['0.75'],
        'MR-short-mAP': mr['short']['MR-mAP']['average'],
        'MR-middle-mAP': mr['middle']['MR-mAP']['average'],
        'MR-long-mAP': mr['long']['MR-mAP']['average'],
        'MR-full-R1@0.5': mr['full']['MR-R1']['0.5'],
        'MR-full-R1@0.7': mr['full']['MR-R1']['0.7'],
    }.items()))
  if 'pred_saliency_scores' in submission[0]:
    hl = _qvh_highlights(rows, ground_truth, gt_where)
    metrics.update(hl)
    brief.update(_hl_brief(hl))
  return _assemble(brief, metrics)


def moment_retrieval(submission: Sequence[dict], sub_index: dict[Any, int],
                     ground_truth: Sequence[dict], gt_where: Locator) -> dict[str, Any]:
  """UniVTG / R²-Tuning `vtg_eval`: R1 and R5 at 0.3..0.95, mIoU, mAP, HD when GT has saliency."""
  rows = _aligned(submission, sub_index, ground_truth)
  inf = float('inf')
  ranges = (('short', 0, 10), ('middle', 10, 30), ('long', 30, inf), ('full', 0, inf))
  mr = _moment_retrieval(rows, ground_truth, gt_where, ranges, (0, inf), R2_R1_THRESHOLDS,
                         extended=True)
  metrics = dict(mr)
  brief = {f'MR-{name}-mAP': mr[name]['MR-mAP']['average'] for name in ('short', 'middle', 'long')}
  brief.update({'MR-full-mAP': mr['full']['MR-mAP']['average'],
                'MR-full-mAP@0.5': mr['full']['MR-mAP']['0.5'],
                'MR-full-mAP@0.75': mr['full']['MR-mAP']['0.75']})
  brief.update({f'MR-{name}-mIoU': mr[name]['MR-mIoU'] for name, *_ in ranges})
  for k in ('R1', 'R5'):
    brief.update({f'MR-full-{k}@{t}': mr['full'][f'MR-{k}'][t] for t in ('0.3', '0.5', '0.7')})
  brief = dict(sorted(brief.items()))
  if ('pred_saliency_scores' in submission[0]
      and isinstance(ground_truth[0].get('saliency_scores'), list)):
    hl = _qvh_highlights(rows, ground_truth, gt_where)
    metrics.update(hl)
    brief.update(_hl_brief(hl))
  return _assemble(brief, metrics)


def _clip_labels(ground_truth: Sequence[dict], where: Locator) -> list[np.ndarray]:
  labels = []
  for i, row in enumerate(ground_truth):
    label = np.asarray(row.get('label') or [], dtype=np.float64)
    if label.ndim == 1:
      label = label[:, None]
    if label.ndim != 2 or label.shape[0] == 0 or 'domain' not in row:
      raise EvaluationInputError(
          f'{where(i)}: qid {row.get("qid")!r}: needs "label" (per-clip scores, (clips, '
          f'annotators)) and "domain"')
    labels.append(label)
  return labels


def _per_domain(ground_truth: Sequence[dict], video_ap: np.ndarray) -> dict[str, Any]:
  """Means per domain (video_ap: (V,) or (V, annotators)), then the mean over domains."""
  by_domain = collections.defaultdict(list)
  for i, row in enumerate(ground_truth):
    by_domain[row['domain']].append(i)
  domain_ap = {d: float(np.mean(video_ap[idx].mean(0))) for d, idx in sorted(by_domain.items())}
  brief = {'mAP': percent(np.mean(list(domain_ap.values())))}
  brief.update({f'mAP-{d}': percent(v) for d, v in domain_ap.items()})
  domains = {d: {'mAP': percent(v), 'videos': len(by_domain[d])} for d, v in domain_ap.items()}
  return {'brief': brief, 'domains': domains}


def _ranked_clips(rows: Sequence[dict], labels: Sequence[np.ndarray]):
  """Scores (V, C), label array (V, C, A) and mask of the clips that have both a prediction and
  a label (the official code ranks only the predicted clips; extra predictions are dropped)."""
  scores, pred_mask = highlights.pack_scores([r['pred_saliency_scores'] for r in rows])
  num_labels = np.array([len(label) for label in labels])
  width = max(scores.shape[1], int(num_labels.max()))
  annotators = max(label.shape[1] for label in labels)
  label_array = np.zeros((len(labels), width, annotators))
  for i, label in enumerate(labels):
    label_array[i, :len(label), :label.shape[1]] = label
  scores = np.pad(scores, ((0, 0), (0, width - scores.shape[1])))
  pred_mask = np.pad(pred_mask, ((0, 0), (0, width - pred_mask.shape[1])))
  label_mask = np.arange(width)[None, :] < num_labels[:, None]
  return scores, label_array, label_mask, pred_mask & label_mask


def youtube_highlights(submission: Sequence[dict], sub_index: dict[Any, int],
                       ground_truth: Sequence[dict], gt_where: Locator) -> dict[str, Any]:
  """YouTube Highlights: AP over the full ranking with positives label > 0; mean per domain."""
  rows = _aligned(submission, sub_index, ground_truth)
  scores, label, _, mask = _ranked_clips(rows, _clip_labels(ground_truth, gt_where))
  return _per_domain(ground_truth, highlights.trapezoid_ap(label[..., :1] > 0, scores, mask)[:, 0])


def tvsum(submission: Sequence[dict], sub_index: dict[Any, int],
          ground_truth: Sequence[dict], gt_where: Locator) -> dict[str, Any]:
  """TVSum top-5 mAP: per annotator, positives above the (lower) median, AP in the top 5."""
  rows = _aligned(submission, sub_index, ground_truth)
  scores, label, label_mask, mask = _ranked_clips(rows, _clip_labels(ground_truth, gt_where))
  positive = label > highlights.lower_median(label, label_mask)[:, None, :]  # (V, C, A)
  ap = highlights.trapezoid_ap(positive, scores, mask, top_k=TVSUM_TOP_K)
  return _per_domain(ground_truth, ap)


Protocol = Callable[[Sequence[dict], dict, Sequence[dict], Locator], dict[str, Any]]
