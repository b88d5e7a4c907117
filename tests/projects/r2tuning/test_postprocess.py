"""Moment decoding, rounding and NMS against plain loop references; submission rows."""
import math

import numpy as np
import pytest

from jaxvg.projects.r2tuning import config as r2_config
from jaxvg.projects.r2tuning.model import make_points
from jaxvg.projects.r2tuning.postprocess import clamp_and_round, decode_moments, nms, postprocess


def ref_iou(a, b):
  inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
  union = (a[1] - a[0]) + (b[1] - b[0]) - inter
  return inter / union if union > 0 else 0.0


def ref_nms(windows, kind, thres):
  w = [list(x) for x in windows]
  for i in range(len(w)):
    best = max(range(i, len(w)), key=lambda j: (w[j][2], -j))
    w[i], w[best] = w[best], w[i]
    for j in range(i + 1, len(w)):
      iou = ref_iou(w[i], w[j])
      if kind == 'normal' and iou >= thres:
        w[j][2] = 0.0
      elif kind == 'linear':
        w[j][2] *= 1 - iou
  return sorted(w, key=lambda x: -x[2])


@pytest.mark.parametrize('kind', ['normal', 'linear'])
def test_nms_matches_loop_reference(kind):
  rng = np.random.default_rng(0)
  starts = rng.integers(0, 20, 30) * 2.0
  windows = np.stack([starts, starts + rng.integers(1, 8, 30) * 2.0, rng.uniform(size=30)], 1)
  windows[5] = windows[3]          # exact duplicate window
  windows[7, :2] = [10.0, 10.0]    # empty window (rounding can make them)
  got = nms(windows, kind, 0.7)
  np.testing.assert_allclose(got, np.asarray(ref_nms(windows, kind, 0.7)), atol=1e-12)
  assert len(got) == 30            # NMS never deletes
  if kind == 'normal':
    assert (got[:, 2] == 0).any()


def test_decode_topk_clamp_round_against_reference():
  rng = np.random.default_rng(1)
  t, fps, duration = 20, 0.5, 39.0
  points = make_points(t, (1, 2, 4, 8))
  logits, reg = rng.normal(size=len(points)) * 2, np.exp(rng.normal(size=(len(points), 2)))
  got = decode_moments(logits, reg, points, fps, 10)
  ref = sorted([[(p - s * r[0]) / fps, (p + s * r[1]) / fps, 1 / (1 + math.exp(-z))]
                for (p, _, _, s), r, z in zip(points, reg, logits)], key=lambda x: -x[2])[:10]
  np.testing.assert_allclose(got, ref, rtol=1e-12)
  rounded = clamp_and_round(got, duration, 2.0)
  for (s, e, score), (rs, re_, rscore) in zip(got, rounded):
    cs, ce = min(max(s, 0), duration), min(max(e, 0), duration)
    if e < duration:
      cs, ce = round(cs / 2) * 2, round(ce / 2) * 2
    assert (rs, re_, rscore) == pytest.approx((cs, ce, score))


def test_postprocess_rows_skip_padded_samples():
  c = r2_config.base()
  c.post.max_num_moment = 5
  b, t = 3, 8
  points = make_points(t, c.model.strides)
  rng = np.random.default_rng(2)
  video_mask = np.arange(t)[None] < np.array([8, 6, 8])[:, None]
  point_mask = np.concatenate([np.arange(t // s)[None] * s + s <= video_mask.sum(1)[:, None]
                               for s in (1, 2, 4, 8)], 1)
  outputs = dict(cls_logits=rng.normal(size=(b, len(points))),
                 reg=np.exp(rng.normal(size=(b, len(points), 2))), point_mask=point_mask,
                 saliency=rng.uniform(size=(b, t)), video_mask=video_mask)
  metadata = dict(qid=np.array([7, 8, 9]), vid=['a', 'b', 'c'], duration=[16.0, 12.0, 16.0],
                  fps=[0.5, 0.5, 0.5], sample_mask=np.array([True, True, False]))
  rows = postprocess(outputs, metadata, c)
  assert [(r['qid'], r['vid']) for r in rows] == [(7, 'a'), (8, 'b')]
  assert isinstance(rows[0]['qid'], int)
  assert len(rows[1]['pred_saliency_scores']) == 6
  np.testing.assert_allclose(rows[1]['pred_saliency_scores'], outputs['saliency'][1, :6])
  for row, i in zip(rows, range(2)):
    windows = np.asarray(row['pred_relevant_windows'])
    assert windows.shape == (5, 3)
    assert (np.diff(windows[:, 2]) <= 0).all() and (windows[:, :2] >= 0).all()
    assert (windows[:, :2] <= metadata['duration'][i]).all()
    valid = point_mask[i]
    expect = decode_moments(outputs['cls_logits'][i], outputs['reg'][i], points, 0.5, 5, valid)
    expect = np.asarray(ref_nms(clamp_and_round(expect, metadata['duration'][i], 2.0), 'normal', 0.7))
    np.testing.assert_allclose(windows, expect)
