"""Plain-Python transcriptions of the official metric routines, used only as test oracles.

Moment-DETR `standalone_eval/utils.py` (`compute_average_precision_detection`, `get_ap` with
sklearn) and the UMT trapezoid AP of R²-Tuning's `datasets/{youtube,tvsum}.py`. Loops per query,
per prediction, per GT window, exactly as the originals; the only change is that GT windows of
equal IoU are visited last-index-first (a stable sort, reversed), the documented jaxvg tie rule.
"""
import numpy as np
from sklearn.metrics import precision_recall_curve


def detection_ap(gt_windows, pred_windows, thresholds):
  """gt_windows [[s, e]], pred_windows [[s, e, score]] of one query -> AP per threshold."""
  ap = np.zeros(len(thresholds))
  if not pred_windows:
    return ap
  preds = sorted(pred_windows, key=lambda w: -w[2])
  lock = -np.ones((len(thresholds), len(gt_windows)))
  tp = np.zeros((len(thresholds), len(preds)))
  fp = np.zeros((len(thresholds), len(preds)))
  for i, p in enumerate(preds):
    ious = []
    for g in gt_windows:
      inter = max(0.0, min(p[1], g[1]) - max(p[0], g[0]))
      union = (p[1] - p[0]) + (g[1] - g[0]) - inter
      ious.append(inter / union if union else 0.0)
    order = np.argsort(ious, kind='stable')[::-1]
    for t, thr in enumerate(thresholds):
      for j in order:
        if ious[j] < thr:
          fp[t, i] = 1
          break
        if lock[t, j] >= 0:
          continue
        tp[t, i] = 1
        lock[t, j] = i
        break
      if fp[t, i] == 0 and tp[t, i] == 0:
        fp[t, i] = 1
  tp_c, fp_c = np.cumsum(tp, 1), np.cumsum(fp, 1)
  recall, precision = tp_c / len(gt_windows), tp_c / (tp_c + fp_c)
  for t in range(len(thresholds)):
    mp = np.hstack([[0], precision[t], [0]])
    mr = np.hstack([[0], recall[t], [1]])
    for i in range(len(mp) - 1)[::-1]:
      mp[i] = max(mp[i], mp[i + 1])
    idx = np.where(mr[1:] != mr[:-1])[0] + 1
    ap[t] = np.sum((mr[idx] - mr[idx - 1]) * mp[idx])
  return ap


def get_ap(y_true, y_predict):
  """Moment-DETR `get_ap` (interpolate=True, point_11=False) on sklearn's PR curve."""
  if len(set(y_true)) == 1:
    return 0.0 if y_true[0] == 0 else 1.0
  precision, recall, _ = precision_recall_curve(y_true, y_predict)
  recall = recall.astype(np.float32)
  for i in range(1, len(precision)):
    precision[i] = max(precision[i - 1], precision[i])
  return float(np.mean(precision[np.where(np.diff(recall))]))


def umt_ap(labels_in_rank_order):
  """The trapezoid AP loop of R²-Tuning's YouTube / TVSum `evaluate` on a ranked 0/1 list."""
  num_gt = sum(labels_in_rank_order)
  if num_gt == 0:
    return 0.0
  hits = ap = rec = 0
  prc = 1
  for j, gt in enumerate(labels_in_rank_order):
    hits += gt
    _rec, _prc = hits / num_gt, hits / (j + 1)
    ap += (_rec - rec) * (prc + _prc) / 2
    rec, prc = _rec, _prc
  return ap
