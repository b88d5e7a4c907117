"""Charades/TACoS-style moment retrieval, YouTube Highlights, TVSum and STVG on hand-checked
cases, and YouTube/TVSum on the real annotation files against the official loops."""

import numpy as np
import pytest

import eval_reference
from jaxvg import evaluation
from jaxvg.evaluation import stvg


def _two_queries():
  gt = [{'qid': 'a', 'duration': 30.0, 'relevant_windows': [[0.0, 10.0]]},
        {'qid': 'b', 'duration': 30.0, 'relevant_windows': [[10.0, 20.0]]}]
  submission = [
      {'qid': 'a', 'pred_relevant_windows': [[0.0, 10.0, 0.9], [20.0, 30.0, 0.8]]},
      # first window IoU 5/15 = 1/3; the second is exact but has the lower score
      {'qid': 'b', 'pred_relevant_windows': [[15.0, 25.0, 0.9], [10.0, 20.0, 0.5]]}]
  return submission, gt


@pytest.mark.parametrize('dataset', ['charades_sta', 'tacos', 'ego4d_nlq', 'activitynet'])
def test_moment_retrieval_by_hand(dataset):
  submission, gt = _two_queries()
  result = evaluation.evaluate(dataset, submission, gt)
  brief = result['brief']
  assert brief['MR-full-R1@0.3'] == 100.0  # 1 and 1/3
  assert brief['MR-full-R1@0.5'] == brief['MR-full-R1@0.7'] == 50.0
  assert brief['MR-full-R5@0.3'] == brief['MR-full-R5@0.7'] == 100.0  # exact window in top 5
  assert brief['MR-full-mIoU'] == 66.67  # (1 + 1/3) / 2
  # AP: query a = 1 (hit first); query b: miss then hit, precision 1/2 at recall 1 -> 0.5.
  assert brief['MR-full-mAP'] == brief['MR-full-mAP@0.5'] == brief['MR-full-mAP@0.75'] == 75.0
  assert brief['MR-short-mAP'] == 75.0  # both windows are 10 s long: (0, 10]
  # R²-Tuning's quirk: an empty bucket falls back to the whole set.
  assert result['middle'] == result['long'] == result['full']
  assert evaluation.PRIMARY_METRIC[dataset] in brief


def test_qvhighlights_brief_has_the_official_keys_only():
  submission, gt = _two_queries()
  brief = evaluation.evaluate('qvhighlights', submission, gt)['brief']
  assert list(brief) == ['MR-full-R1@0.5', 'MR-full-R1@0.7', 'MR-full-mAP', 'MR-full-mAP@0.5',
                         'MR-full-mAP@0.75', 'MR-long-mAP', 'MR-middle-mAP', 'MR-short-mAP']
  assert brief['MR-full-mAP'] == 75.0 and brief['MR-full-R1@0.5'] == 50.0


def test_umt_ap_by_hand():
  # ranked labels 1 0 1 0: rec .5 at prec 1 (+.5), then rec 1 at prec 2/3: +.5 (1/2 + 2/3) / 2
  gt = [{'qid': 'v', 'domain': 'dog', 'label': [[1], [0], [1], [0]]}]
  sub = [{'qid': 'v', 'pred_saliency_scores': [0.9, 0.8, 0.7, 0.1]}]
  want = 0.5 + 0.5 * (0.5 + 2 / 3) / 2
  brief = evaluation.evaluate('youtube_highlights', sub, gt)['brief']
  assert brief == {'mAP': float(f'{100 * want:.2f}'), 'mAP-dog': float(f'{100 * want:.2f}')}
  # TVSum: one annotator, scores 5 1 5 1 2 1: lower median 1 -> positives {0, 2, 4};
  # ranked by prediction 0 1 2 3 4 5, top 5 = 1 0 1 0 1: num_gt = 3 (within the top 5).
  gt = [{'qid': 'v', 'domain': 'BK', 'label': [[5], [1], [5], [1], [2], [1]]}]
  sub = [{'qid': 'v', 'pred_saliency_scores': [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]}]
  third = 1 / 3
  want = third * (1 + 1) / 2 + third * (0.5 + 2 / 3) / 2 + third * (0.5 + 3 / 5) / 2
  assert evaluation.evaluate('tvsum', sub, gt)['brief']['mAP'] == float(f'{100 * want:.2f}')


def _load(shared, path):
  return evaluation.load_jsonl(shared / 'data' / path)


def test_youtube_on_real_annotations(shared):
  gt = _load(shared, 'youtube_highlights/youtube_highlight_val_release.jsonl')
  label = lambda row: [float(c[0] > 0) for c in row['label']]
  perfect = [{'qid': r['qid'], 'pred_saliency_scores': label(r)} for r in gt]
  result = evaluation.evaluate('youtube_highlights', perfect, gt)
  assert set(result['domains']) == {'dog', 'gymnastics', 'parkour', 'skating', 'skiing',
                                    'surfing'}
  assert all(v == 100.0 for v in result['brief'].values())
  # Positives ranked last: AP = sum_k (1/P) (prec_{k-1} + prec_k) / 2, prec_k = k / (N - P + k).
  inverted = [{'qid': r['qid'], 'pred_saliency_scores': [-v for v in label(r)]} for r in gt]
  per_domain = {}
  for r in gt:
    n, p = len(r['label']), int(sum(label(r)))
    prec = [0.0 if n > p else 1.0] + [k / (n - p + k) for k in range(1, p + 1)]
    ap = sum((prec[k - 1] + prec[k]) / 2 / p for k in range(1, p + 1)) if p else 0.0
    per_domain.setdefault(r['domain'], []).append(ap)
  result = evaluation.evaluate('youtube_highlights', inverted, gt)
  means = {d: np.mean(v) for d, v in per_domain.items()}
  for domain, value in means.items():
    assert result['domains'][domain]['mAP'] == float(f'{100 * value:.2f}')
    assert result['domains'][domain]['videos'] == len(per_domain[domain])
  assert result['brief']['mAP'] == float(f'{100 * np.mean(list(means.values())):.2f}')


def test_tvsum_on_real_annotations(shared):
  gt = _load(shared, 'tvsum/tvsum_val_release.jsonl')
  # Prediction: the first annotator's scores (ties by clip order), i.e. GT-derived.
  sub = [{'qid': r['qid'], 'pred_saliency_scores': [c[0] - 1e-6 * i for i, c in enumerate(r['label'])]}
         for r in gt]
  result = evaluation.evaluate('tvsum', sub, gt)
  assert len(result['domains']) == 10
  expected = {}
  for r, s in zip(gt, sub):
    ranking = sorted(range(len(s['pred_saliency_scores'])), key=lambda i: -s['pred_saliency_scores'][i])
    aps = []
    for a in range(20):
      column = [c[a] for c in r['label']]
      median = sorted(column)[(len(column) - 1) // 2]  # torch.median: the lower middle value
      aps.append(eval_reference.umt_ap([float(column[i] > median) for i in ranking][:5]))
    expected[r['domain']] = np.mean(aps)
  for domain, value in expected.items():
    assert result['brief'][f'mAP-{domain}'] == float(f'{100 * value:.2f}')
  assert result['brief']['mAP'] == float(f'{100 * np.mean(list(expected.values())):.2f}')
  # The first annotator's own column is perfect whenever its top 5 lie above its median.
  assert result['brief']['mAP'] > 50.0


def _tube(qid, span, frames, box):
  return {'qid': qid, 'span': span, 'frame_ids': list(frames), 'boxes': [box] * len(frames)}


def test_stvg_by_hand():
  gt = [_tube('x', [2, 5], range(2, 6), [0, 0, 10, 10])]
  pred = [_tube('x', [4, 7], range(4, 8), [0, 0, 10, 5])]  # box IoU 0.5 on frames 4..7
  hc = evaluation.evaluate('hcstvg', pred, gt)['brief']
  # tIoU = 1 / (3 + 3 - 1); inclusive: S_u = 2..7 (6 frames), S_i = 4..5 -> 2 x 0.5 / 6
  assert hc['m_tIoU'] == pytest.approx(20.0)
  assert hc['m_vIoU'] == pytest.approx(100 / 6)
  assert hc['vIoU@0.3'] == hc['vIoU@0.5'] == 0.0
  assert hc['gt_vIoU'] == pytest.approx(25.0)  # 0.5 on frames 4, 5 of GT frames 2..5
  vid = evaluation.evaluate('vidstg', pred, gt)['brief']
  # half-open: S_u = range(2, 7) (5 frames), S_i = range(4, 5) -> 0.5 / 5
  assert vid['m_tIoU'] == pytest.approx(20.0)
  assert vid['m_vIoU'] == pytest.approx(10.0)


def test_stvg_thresholds_are_strict_and_averaged():
  gt = [_tube('p', [0, 9], range(10), [0, 0, 10, 10]), _tube('q', [0, 9], range(10), [0, 0, 10, 10])]
  pred = [_tube('p', [0, 9], range(10), [0, 0, 10, 10]),  # perfect
          _tube('q', [0, 9], range(10), [0, 0, 10, 5])]  # vIoU exactly 0.5: not > 0.5
  brief = evaluation.evaluate('hcstvg', pred, gt)['brief']
  assert brief['m_vIoU'] == pytest.approx(75.0) and brief['m_tIoU'] == pytest.approx(100.0)
  assert brief['vIoU@0.3'] == 100.0 and brief['vIoU@0.5'] == 50.0


def test_stvg_array_api_matches_rows():
  scores = stvg.tube_scores(np.array([[0, 3]]), np.array([[2, 5]]), np.zeros((1, 6, 4)),
                            np.zeros((1, 6, 4)), np.zeros((1, 6), bool), 'hcstvg')
  assert scores['tIoU'][0] == pytest.approx(1 / 5)  # (3 - 2) / (3 + 3 - 1)
  assert scores['vIoU'][0] == 0.0
  with pytest.raises(ValueError, match='convention'):
    stvg.tube_scores(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 1, 4)), np.zeros((1, 1, 4)),
                     np.zeros((1, 1), bool), 'inclusive')


def test_stvg_chunks_of_videos_score_as_one_dense_axis(monkeypatch):
  rng = np.random.default_rng(0)
  gt, pred = [], []
  for i in range(7):
    start = int(rng.integers(0, 300))
    span = [start, start + int(rng.integers(1, 40))]
    gt.append(_tube(f'v{i}', span, range(span[0], span[1] + 1), [0, 0, 10, 10]))
    shift = int(rng.integers(-5, 6))
    ps = [max(0, span[0] + shift), span[1] + shift + 3]
    pred.append(_tube(f'v{i}', ps, range(ps[0], ps[1] + 1), [0, 0, 10, int(rng.integers(3, 11))]))
  whole = evaluation.evaluate('vidstg', pred, gt)['brief']
  monkeypatch.setattr(stvg, 'CHUNK', 3)
  assert evaluation.evaluate('vidstg', pred, gt)['brief'] == pytest.approx(whole, rel=1e-12)
