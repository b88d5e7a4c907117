"""Targets against hand-computed cases of the official rules."""
import numpy as np
import pytest

from jaxvg.data import targets
from jaxvg.data.records import GroundingRecord


def _record(**kw):
  base = dict(vid='v', qid=1, query='q', duration=20.0, fps=0.5,
              relevant_windows=np.zeros((0, 2)))
  base.update(kw)
  return GroundingRecord(**base)


def test_bind_boundary_clamps_swaps_and_widens():
  # T=10 clips at 0.5 fps: the video ends at 20 s; one clip is 2 s.
  windows = np.array([[-3, 5], [25, 18], [7, 7.5], [19.8, 30]], np.float64)
  got = targets.bind_boundary(windows, num_clips=10, fps=0.5)
  want = [[0, 5],        # clamped at 0
          [18, 20],      # clamped to [20, 18], then swapped
          [6.25, 8.25],  # 0.5 s < 2 s: one clip around the centre 7.25
          [18, 20]]      # [19.8, 20] -> centre 19.9 clamped to 19 -> [18, 20]
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_binary_saliency_uses_ceil_ranges_in_clip_units():
  record = _record(duration=10.0, fps=1.0, relevant_windows=np.array([[2.5, 4.2], [0, 1]]))
  t = targets.make_targets(record, 10, seed=0, epoch=0, index=0)
  # range(ceil(2.5), ceil(4.2)) = {3, 4}; range(0, 1) = {0}.
  np.testing.assert_array_equal(np.flatnonzero(t.saliency), [0, 3, 4])
  assert set(np.unique(t.saliency)) == {0.0, 1.0}
  np.testing.assert_allclose(t.windows, [[2.5, 4.2], [0, 1]], atol=1e-6)  # fps 1: same numbers
  assert t.pos_clip in (0, 3, 4)


def test_qvh_saliency_sum_over_12_and_truncation():
  record = _record(relevant_windows=np.array([[4, 8]]), relevant_clip_ids=np.array([2, 3, 9]),
                   saliency_scores=np.array([[4, 4, 4], [1, 2, 3], [2, 2, 2]]),
                   saliency_rule='qvh')
  t = targets.make_targets(record, 10, seed=0, epoch=0, index=0)
  want = np.zeros(10, np.float32)
  want[2], want[3], want[9] = 1.0, 0.5, 0.5
  np.testing.assert_allclose(t.saliency, want)
  np.testing.assert_allclose(t.windows, [[2, 4]])     # seconds x 0.5
  short = targets.make_targets(record, 8, seed=0, epoch=0, index=0)  # features shorter
  np.testing.assert_allclose(short.saliency, want[:8])
  assert short.pos_clip in (2, 3)


def test_tvsum_saliency_and_median_positives():
  labels = np.stack([np.full(20, v, np.float32) for v in (1, 5, 3, 2)])  # sums 20, 100, 60, 40
  record = _record(labels=labels, saliency_rule='tvsum', duration=8.0)
  t = targets.make_targets(record, 6, seed=0, epoch=0, index=0)   # video has 6 clips, labels 4
  assert t.num_clips == 4
  np.testing.assert_allclose(t.saliency, [0, 1, 0.5, 0.25])
  # torch-style lower median of [0, .25, .5, 1] is .25: positives are clips 1 and 2.
  draws = {targets.make_targets(record, 6, seed=0, epoch=e, index=0).pos_clip for e in range(40)}
  assert draws == {1, 2}
  assert targets.lower_median(np.array([4.0, 1.0, 3.0, 2.0])) == 2.0


def test_youtube_saliency():
  record = _record(labels=np.array([[-1], [0], [1], [1]], np.float32), saliency_rule='youtube',
                   duration=4.0, fps=1.0)
  t = targets.make_targets(record, 4, seed=3, epoch=0, index=0)
  np.testing.assert_allclose(t.saliency, [0, 0.5, 1, 1])
  draws = {targets.make_targets(record, 4, seed=3, epoch=e, index=0).pos_clip for e in range(40)}
  assert draws == {2, 3}                            # > 0.5 only


def test_pos_clip_is_deterministic_and_uniform():
  candidates = np.array([3, 5, 8, 13])
  a = [targets.draw_pos_clip(candidates, 7, e, i) for e in range(3) for i in range(50)]
  b = [targets.draw_pos_clip(candidates, 7, e, i) for e in range(3) for i in range(50)]
  assert a == b
  counts = np.array([a.count(c) for c in candidates])
  assert counts.min() > 20                          # 150 draws over 4 values, roughly uniform
  assert targets.draw_pos_clip(candidates, 8, 0, 0) in candidates
  assert targets.draw_pos_clip(np.zeros(0, int), 0, 0, 0) == 0


def test_test_split_record_has_empty_targets():
  t = targets.make_targets(_record(saliency_rule='none'), 5, seed=0, epoch=0, index=0)
  assert t.windows.shape == (0, 2) and not t.saliency.any() and t.pos_clip == 0


@pytest.mark.parametrize('fps', [0.5, 1.0])
def test_widened_window_is_exactly_one_clip(fps):
  t = targets.bind_boundary(np.array([[3.0, 3.1]]), num_clips=20, fps=fps)
  assert t[0, 1] - t[0, 0] == pytest.approx(1 / fps)
  assert (t[0, 0] + t[0, 1]) / 2 == pytest.approx(3.05)
