"""Tube post-processing: linear interpolation equals the official CG-STVG function (fixture made by
running it), golden m_vIoU / m_tIoU values in both conventions, batch outputs -> scored rows."""
import json
import pathlib

import numpy as np
import pytest

from jaxvg import evaluation
from jaxvg.data.tubes import TubeRecord
from jaxvg.postprocess import tubes

FIXTURE = pathlib.Path(__file__).parents[1] / 'fixtures' / 'stvg_linear_interp.json'


def test_linear_interp_matches_official():
  cases = json.loads(FIXTURE.read_text())['cases']
  for case in cases:
    frames, boxes = tubes.linear_interp(np.array(case['frame_ids']), np.array(case['boxes']))
    assert frames.tolist() == case['out_frames']
    np.testing.assert_allclose(boxes, case['out_boxes'], rtol=0, atol=1e-9)


def test_linear_interp_hand_values():
  frames, boxes = tubes.linear_interp(np.array([4, 0]), np.array([[4, 4, 14, 14], [0, 0, 10, 10.]]))
  assert frames.tolist() == [0, 1, 2, 3, 4]
  np.testing.assert_array_equal(boxes[2], [2, 2, 12, 12])


def _record(convention):
  box = np.array([[20, 30, 60, 90]] * 10, np.float32)
  return TubeRecord(vid='v', qid='q', query='x', num_frames=40, fps=25., width=100, height=100,
                    span=np.array([10, 20]), box_frames=np.arange(10, 20), boxes=box,
                    convention=convention)


@pytest.mark.parametrize('convention,shifted_tiou', [('hcstvg', 8 / 10), ('vidstg', 9 / 11)])
def test_golden_perfect_and_one_frame_shift(convention, shifted_tiou):
  """GT frames 10..19, box fixed. Shift by one frame: 9 of the 11 union frames have IoU 1, so
  vIoU = 9/11 in both conventions; tIoU over continuous lengths: inclusive [10,19] vs [11,20] is
  8/10, half-open [10,20) vs [11,21) is 9/11."""
  gt = _record(convention).to_json()
  brief = evaluation.evaluate(convention, [dict(gt)], [gt])['brief']
  assert brief['m_vIoU'] == 100.0 and brief['m_tIoU'] == 100.0 and brief['vIoU@0.5'] == 100.0
  shifted = dict(gt, span=[s + 1 for s in gt['span']], frame_ids=[f + 1 for f in gt['frame_ids']])
  brief = evaluation.evaluate(convention, [shifted], [gt])['brief']
  assert brief['m_vIoU'] == pytest.approx(100 * 9 / 11)
  assert brief['m_tIoU'] == pytest.approx(100 * shifted_tiou)
  assert brief['gt_vIoU'] == pytest.approx(100 * 9 / 10)


def test_postprocess_outputs_to_scored_rows():
  """A model that is right on every other raw frame (the sampled ones) is exact after
  interpolation when the object moves linearly; padding frames and samples are dropped."""
  record = TubeRecord(
      vid='v', qid=7, query='x', num_frames=30, fps=25., width=200, height=100,
      span=np.array([4, 21]), box_frames=np.arange(4, 21),
      boxes=np.stack([np.array([10, 10, 50, 60]) + [2 * f, 0, 2 * f, 0] for f in range(4, 21)]),
      convention='hcstvg')
  sampled = np.arange(0, 30, 2)
  t = 20
  frame_ids = np.zeros((2, t), np.int64)
  frame_ids[0, :len(sampled)] = sampled
  frame_mask = np.zeros((2, t), bool)
  frame_mask[0, :len(sampled)] = True
  dense, _ = record.dense_boxes()
  xyxy = np.stack([np.array([10, 10, 50, 60]) + [2 * f, 0, 2 * f, 0] for f in sampled])
  cxcywh = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], 1)
  pred = np.zeros((2, t, 4))
  pred[0, :len(sampled)] = cxcywh / [200, 100, 200, 100]
  outputs = {'pred_boxes': pred, 'pred_span': np.array([[2, 10], [0, 0]])}  # raw 4..20
  metadata = {'qid': np.array([7, 0]), 'frame_ids': frame_ids, 'frame_mask': frame_mask,
              'width': np.array([200, 1]), 'height': np.array([100, 1]),
              'sample_mask': np.array([True, False])}
  (row,) = tubes.postprocess_tubes(outputs, metadata, 'hcstvg')
  assert row['qid'] == 7 and row['span'] == [4, 20] and row['frame_ids'] == list(range(29))
  brief = evaluation.evaluate('hcstvg', [row], [record.to_json()])['brief']
  assert brief['m_vIoU'] == pytest.approx(100.0) and brief['m_tIoU'] == pytest.approx(100.0)
  row = tubes.postprocess_tubes(outputs, metadata, 'vidstg')[0]
  assert row['span'] == [4, 21]


def test_plot_tube_draws_the_boxes(tmp_path):
  """Thumbnails carry the predicted and GT boxes at the resized pixels; the PNG has its fixed
  size."""
  from PIL import Image
  from jaxvg import plotting_tubes
  record = _record('hcstvg')   # 100x100 frames, GT box [20, 30, 60, 90] on frames 10..19
  frames = np.full((8, 50, 50, 3), 90, np.uint8)   # stored at half size
  frame_ids = np.arange(0, 40, 5)
  row = tubes.tube_row('q', (10, 19), np.array([10, 15]), np.array([[40., 40, 80, 80]] * 2),
                       'hcstvg')
  thumbs, picked = plotting_tubes.tube_thumbnails(row, frames, frame_ids, 100, 100,
                                                  gt=record.to_json())
  assert picked.tolist() == [10, 15]
  assert tuple(thumbs[0, 20, 30]) == plotting_tubes.PRED_COLOUR   # top edge of [20, 20, 40, 40]
  assert tuple(thumbs[0, 15, 10]) == plotting_tubes.GT_COLOUR     # top-left of [10, 15, 30, 45]
  assert tuple(thumbs[0, 30, 30]) == (90, 90, 90)                 # inside: untouched
  path = plotting_tubes.plot_tube(row, frames, frame_ids, width=100, height=100, num_frames=40,
                                  fps=25.0, path=tmp_path / 'tube.png', gt=record.to_json(),
                                  query='the red square')
  assert Image.open(path).size == (plotting_tubes.WIDTH_PX, plotting_tubes.HEIGHT_PX)


def test_hcstvg_challenge_format():
  row = tubes.tube_row('q', (3, 5), np.array([2, 6]), np.array([[0., 0, 4, 4], [4, 4, 8, 8]]),
                       'hcstvg')
  out = tubes.hcstvg_challenge_format([row], {'q': '1_a.mp4'})
  entry = out['1_a.mp4']
  assert (entry['st_frame'], entry['ed_frame']) == (4, 6)   # 1-based, inclusive
  assert sorted(entry['bbox'], key=int) == ['4', '5', '6']   # raw frames 3..5 only
  np.testing.assert_allclose(entry['bbox']['5'], [2, 2, 6, 6])   # raw frame 4, interpolated
