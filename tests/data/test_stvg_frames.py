"""STVG frames: the official sampling rules, a box drawn into a rendered video found at the same
(rescaled) pixels after preparation at several sample rates, and TFDS reading the same frames as
FrameReader for both the STVG and the temporal-grounding frame directories."""
import json
import pathlib

import grain
import numpy as np
import pytest

from jaxvg.data import frames as frames_lib
from jaxvg.data import stvg_frames
from jaxvg.data import synthetic_tubes
from jaxvg.data import tfds_frames
from jaxvg.data.tubes import TubeRecord
from jaxvg.prepare import frames as prepare_frames
from jaxvg.prepare import stvg_frames as prepare_stvg

RAW_FPS, NUM_FRAMES, H, W = 10, 40, 120, 160


def test_fps_rule_hand_values():
  # 500 frames in 20 s (25 fps) at 3.2 fps: r = 0.128; int(f r) first reaches 1, 2, ... at
  # f = 8, 16, 24, 32, 40, 47 (6.016); the last frame is always kept.
  ids = stvg_frames.sample_ids((0, 500), 25.0, sample_fps=3.2)
  assert ids[:7].tolist() == [0, 8, 16, 24, 32, 40, 47] and ids[-1] == 499
  assert len(ids) == 65
  ids = stvg_frames.sample_ids((10, 20), 25.0, num_samples=4)
  assert ids.tolist() == [10, 13, 16, 19]   # int(linspace(0, 9, 4)) = 0, 3, 6, 9
  assert stvg_frames.sample_ids((10, 13), 25.0, num_samples=4).tolist() == [10, 11, 12]
  assert stvg_frames.resized_shape(360, 640, 420, 1.4) == (420, 588)
  assert stvg_frames.resized_shape(640, 360, 420, 1.4) == (588, 420)


def test_sampling_matches_official():
  """Fixture made by running CG-STVG's make_hcstvg_input_clip / make_vidstg_input_clip."""
  fixture = pathlib.Path(__file__).parents[1] / 'fixtures' / 'stvg_sampling.json'
  for case in json.loads(fixture.read_text())['cases']:
    rule = ({'sample_fps': case['sample_fps']} if case['rule'] == 'fps'
            else {'num_samples': case['num_samples']})
    ids = stvg_frames.sample_ids(case['segment'], case.get('video_fps', 30.0), **rule)
    assert ids.tolist() == case['frame_ids'], case['segment']


def _box(f):
  return np.array([5 + 3 * f, 30 + f, 25 + 3 * f, 70 + f], np.float64)


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
  """A lossless video whose frame f shows a red box at _box(f), and its TubeRecord."""
  root = tmp_path_factory.mktemp('stvg_video')
  frames = np.full((NUM_FRAMES, H, W, 3), 90, np.uint8)
  for f in range(NUM_FRAMES):
    x1, y1, x2, y2 = _box(f).astype(int)
    frames[f, y1:y2, x1:x2] = (230, 20, 20)
  (root / 'videos').mkdir()
  synthetic_tubes.write_video(str(root / 'videos' / 'clip_a.mp4'), frames, RAW_FPS)
  record = TubeRecord(vid='clip_a.mp4', qid='clip_a.mp4', query='the red box',
                      num_frames=NUM_FRAMES, fps=RAW_FPS, width=W, height=H,
                      span=np.array([0, NUM_FRAMES]), box_frames=np.arange(NUM_FRAMES),
                      boxes=np.stack([_box(f) for f in range(NUM_FRAMES)]))
  return root, record


def _red_box(frame):
  ys, xs = np.nonzero((frame[..., 0] > 160) & (frame[..., 1] < 90))
  return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


@pytest.mark.parametrize('rule', [{'sample_fps': 3.2}, {'sample_fps': 6.4}, {'sample_fps': 2.0},
                                  {'num_samples': 7}])
def test_box_found_at_same_pixels(rendered, tmp_path, rule):
  root, record = rendered
  out = str(tmp_path / 'frames')
  summary = prepare_stvg.prepare_stvg_frames(str(root / 'videos'), [record], out, short_side=60,
                                             max_ratio=1.2, fmt='raw', **rule)
  assert summary['written'] == 1 and not summary['failed']
  reader = frames_lib.FrameReader(out)
  ids = reader.frame_ids('clip_a')
  np.testing.assert_array_equal(ids, stvg_frames.sample_ids((0, NUM_FRAMES), RAW_FPS, **rule))
  frames = reader.read('clip_a')
  assert frames.shape[1:] == (60, 72, 3)   # short side 60, long side capped at 1.2 x 60
  dense, _ = record.dense_boxes()
  for raw, frame in zip(ids, frames):
    expected = stvg_frames.scale_boxes(dense[raw], (H, W), (60, 72))
    # One raw frame off moves the box by 1.35 px horizontally after the 0.45 x scale.
    np.testing.assert_allclose(_red_box(frame), expected, atol=0.6)


def _assert_tfds_equal(root):
  reader = frames_lib.FrameReader(root)
  source = tfds_frames.data_source(root)
  starts = tfds_frames.offsets({v: {'num_frames': reader.num_frames(v)} for v in reader.keys()})
  assert len(source) == sum(reader.num_frames(v) for v in reader.keys())
  by_grain = grain.MapDataset.source(source)   # random access as the Grain pipeline reads
  for vid in reader.keys():
    frames = reader.read(vid)
    ids = reader.frame_ids(vid)
    for i, frame in enumerate(frames):
      example = by_grain[starts[vid] + i]
      assert example['vid'].decode() == vid and example['index'] == i
      assert example['frame_id'] == (-1 if ids is None else ids[i])
      np.testing.assert_array_equal(example['image'], frame)


@pytest.mark.parametrize('fmt', ['jpeg', 'raw'])
def test_tfds_reads_stvg_frames(rendered, tmp_path, fmt):
  root, record = rendered
  other = TubeRecord(vid='clip_b.mp4', qid='b', query='x', num_frames=NUM_FRAMES, fps=RAW_FPS,
                     width=W, height=H, span=np.array([2, 5]), box_frames=np.arange(2, 5),
                     boxes=np.zeros((3, 4)))
  videos = tmp_path / 'videos'
  videos.mkdir()
  for name in ('clip_a.mp4', 'clip_b.mp4'):
    (videos / name).write_bytes((root / 'videos' / 'clip_a.mp4').read_bytes())
  out = str(tmp_path / 'frames')
  prepare_stvg.prepare_stvg_frames(str(videos), [record, other], out, num_samples=5,
                                   short_side=48, fmt=fmt)
  _assert_tfds_equal(out)


def test_tfds_reads_temporal_frames(rendered, tmp_path):
  root, _ = rendered
  out = str(tmp_path / 'frames')
  summary = prepare_frames.prepare_frames(str(root / 'videos'), out, '1.0', workers=1)
  assert summary['written'] == 1
  assert frames_lib.FrameReader(out).read('clip_a').shape == (4, 224, 224, 3)
  _assert_tfds_equal(out)


def test_first_layout_still_read(tmp_path):
  """Files of the first layout (JSON header record, raw frame bytes, no sidecar) read as before."""
  from array_record.python import array_record_module
  frames = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 3), np.uint8)
  (tmp_path / 'videos').mkdir()
  writer = array_record_module.ArrayRecordWriter(str(tmp_path / 'videos' / 'old.array_record'),
                                                 'group_size:1')
  writer.write(json.dumps({'vid': 'old', 'fps': 0.5, 'num_frames': 3, 'format': 'raw',
                           'size': 8}).encode())
  for frame in frames:
    writer.write(frame.tobytes())
  writer.close()
  reader = frames_lib.FrameReader(str(tmp_path))
  np.testing.assert_array_equal(reader.read('old'), frames)
  assert reader.frame_ids('old') is None
  frames_lib.build_index(str(tmp_path))   # no TFDS metadata for the first layout
  np.testing.assert_array_equal(frames_lib.FrameReader(str(tmp_path)).read('old', 2), frames[:2])
