"""Invariants of the QVHighlights protocol, and the vectorised kernels against loop oracles."""
import json
import random

import numpy as np
from hypothesis import given, settings, strategies as st

import eval_reference
from jaxvg import evaluation
from jaxvg.evaluation import highlights, moments, protocols

FEW = settings(max_examples=20, deadline=None)


def _gt_row(qid, windows, duration=150):
  """A QVH annotation row whose saliency marks the clips of its windows."""
  clip_ids = sorted({c for s, e in windows for c in range(int(s) // 2, int(e) // 2)})
  rng = random.Random(qid)
  return {'qid': qid, 'query': 'q', 'vid': f'v{qid}', 'duration': duration,
          'relevant_windows': [list(w) for w in windows], 'relevant_clip_ids': clip_ids,
          'saliency_scores': [[rng.randint(0, 4) for _ in range(3)] for _ in clip_ids]}


@st.composite
def ground_truths(draw, max_queries=6):
  """QVH rows with 1-3 disjoint windows of even seconds, lengths across all buckets."""
  rows = []
  for qid in range(draw(st.integers(1, max_queries))):
    cuts = sorted(draw(st.sets(st.integers(0, 75), min_size=2, max_size=6)))
    pairs = [(2 * cuts[i], 2 * cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
    rows.append(_gt_row(qid, pairs))
  return rows


def _perfect(gt):
  saliency = lambda row: [float(c in row['relevant_clip_ids']) for c in range(75)]
  return [{'qid': r['qid'], 'pred_relevant_windows': [w + [1.0] for w in r['relevant_windows']],
           'pred_saliency_scores': saliency(r)} for r in gt]


@FEW
@given(ground_truths(), st.randoms(use_true_random=False))
def test_query_order_is_irrelevant(gt, rnd):
  submission = _perfect(gt)
  for row in submission:  # make it imperfect, deterministically
    row['pred_relevant_windows'].append([0.0, 150.0, 0.5])
    row['pred_saliency_scores'] = [rnd.random() for _ in range(75)]
  result = evaluation.evaluate('qvhighlights', submission, gt)
  rnd.shuffle(submission)
  gt_shuffled = gt[:]
  rnd.shuffle(gt_shuffled)
  shuffled = evaluation.evaluate('qvhighlights', submission, gt_shuffled)
  assert json.dumps(shuffled) == json.dumps(result)  # equal, NaN of an empty bucket included


@FEW
@given(ground_truths())
def test_ground_truth_as_prediction_scores_100(gt):
  brief = evaluation.evaluate('qvhighlights', _perfect(gt), gt)['brief']
  for key in ('MR-full-R1@0.5', 'MR-full-R1@0.7', 'MR-full-mAP', 'MR-full-mAP@0.5',
              'MR-full-mAP@0.75'):
    assert brief[key] == 100.0, key
  bucket = lambda length: 'short' if length <= 10 else 'middle' if length <= 30 else 'long'
  if all(len({bucket(e - s) for s, e in r['relevant_windows']}) == 1 for r in gt):
    # A query's windows of other buckets are false positives there; with one bucket per
    # query, every bucket is perfect too (NaN when empty).
    for key in ('MR-short-mAP', 'MR-middle-mAP', 'MR-long-mAP'):
      assert brief[key] == 100.0 or np.isnan(brief[key]), key


@FEW
@given(st.lists(st.booleans(), min_size=1, max_size=12))
def test_r1_scores_only_the_first_listed_window(correct_first):
  """Each query lists the GT window and a disjoint decoy (with a higher score); R1 counts the
  queries whose *first listed* window is the GT one, whatever the scores."""
  gt, submission = [], []
  for qid, first in enumerate(correct_first):
    gt.append(_gt_row(qid, [(20, 40)]))
    right, decoy = [20.0, 40.0, 0.1], [80.0, 100.0, 0.9]
    windows = [right, decoy] if first else [decoy, right]
    submission.append({'qid': qid, 'pred_relevant_windows': windows})
  brief = evaluation.evaluate('qvhighlights', submission, gt)['brief']
  expected = float(f'{100 * np.mean(correct_first):.2f}')
  assert brief['MR-full-R1@0.5'] == brief['MR-full-R1@0.7'] == expected
  assert brief['MR-full-mAP'] == 50.0  # ranking by score: decoy first, then the hit


def test_mr_map_keeps_first_ten_windows_in_list_order():
  gt = [_gt_row(0, [(20, 40)])]
  decoys = [[100.0 + i, 110.0 + i, 0.5] for i in range(10)]
  late_hit = {'qid': 0, 'pred_relevant_windows': decoys + [[20.0, 40.0, 1.0]]}
  assert evaluation.evaluate('qvhighlights', [late_hit], gt)['brief']['MR-full-mAP'] == 0.0
  early_hit = {'qid': 0, 'pred_relevant_windows': decoys[:9] + [[20.0, 40.0, 1.0]]}
  assert evaluation.evaluate('qvhighlights', [early_hit], gt)['brief']['MR-full-mAP'] == 100.0


@FEW
@given(ground_truths(max_queries=4), st.integers(1, 74), st.integers(76, 90),
       st.randoms(use_true_random=False))
def test_saliency_padded_and_truncated_as_official(gt, short, long, rnd):
  """Shorter predictions are zero-padded to int(duration / 2) clips, longer ones truncated."""
  full = [[rnd.random() for _ in range(long)] for _ in gt]
  def run(lists):
    rows = [{'qid': r['qid'], 'pred_saliency_scores': s} for r, s in zip(gt, lists)]
    return evaluation.evaluate('qvhighlights', rows, gt)
  padded = run([s[:short] + [0.0] * (75 - short) for s in full])
  assert run([s[:short] for s in full]) == padded
  hl = lambda result: {k: v['HL-mAP'] for k, v in result.items() if k.startswith('HL-min')}
  assert hl(run(full)) == hl(run([s[:75] for s in full]))


def test_hit1_argmax_beyond_the_video_is_a_miss():
  gt = [_gt_row(0, [(0, 150)], duration=150)]  # every clip relevant
  gt[0]['saliency_scores'] = [[4, 4, 4]] * 75
  inside = [{'qid': 0, 'pred_saliency_scores': [1.0] + [0.0] * 79}]
  beyond = [{'qid': 0, 'pred_saliency_scores': [0.0] * 79 + [1.0]}]
  assert evaluation.evaluate('qvhighlights', inside, gt)['brief']['HL-min-VeryGood-Hit1'] == 100.0
  assert evaluation.evaluate('qvhighlights', beyond, gt)['brief']['HL-min-VeryGood-Hit1'] == 0.0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1)), min_size=1, max_size=30))
def test_interpolated_ap_equals_sklearn_get_ap(pairs):
  """Coarse integer scores force many ties; the numpy AP equals the sklearn-based original
  (to the last bits of the final mean, whose summation order differs)."""
  scores = np.array([p[0] for p in pairs], dtype=np.float64)
  labels = np.array([p[1] for p in pairs])
  padded = np.concatenate([scores, np.full(5, 7.0)])[None]  # padding must not count
  mask = np.arange(padded.shape[1])[None] < len(pairs)
  two_columns = np.stack([labels, 1 - labels], -1)
  two_columns = np.concatenate([two_columns, np.ones((5, 2), int)])[None]
  got = highlights.interpolated_ap(two_columns, padded, mask)[0]
  want = [eval_reference.get_ap(labels, scores), eval_reference.get_ap(1 - labels, scores)]
  np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


@st.composite
def detection_cases(draw):
  n_gt = draw(st.integers(1, 5))
  starts = draw(st.lists(st.integers(0, 60), min_size=n_gt, max_size=n_gt))
  gt = [[2.0 * s, 2.0 * s + 2.0 * draw(st.integers(1, 15))] for s in starts]
  n_pred = draw(st.integers(1, 10))
  preds = []
  for _ in range(n_pred):
    s = 2.0 * draw(st.integers(0, 70))
    preds.append([s, s + 2.0 * draw(st.integers(0, 15)), draw(st.sampled_from([0.1, 0.5, 0.9]))])
  return gt, preds


@settings(max_examples=25, deadline=None)
@given(st.lists(detection_cases(), min_size=1, max_size=4))
def test_detection_ap_equals_official_loop(cases):
  pred, pred_mask = moments.pack_windows([p for _, p in cases], width=3)
  gt, gt_mask = moments.pack_windows([g for g, _ in cases], width=2)
  thresholds = np.array(protocols.MAP_THRESHOLDS)
  got = moments.detection_ap(pred[..., :2], pred[..., 2], pred_mask, gt, gt_mask, thresholds)
  want = np.stack([eval_reference.detection_ap(g, p, thresholds) for g, p in cases])
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
