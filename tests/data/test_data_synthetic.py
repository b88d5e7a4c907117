"""The synthetic benchmark: deterministic, QVH schema, frames through the real store, chance."""
import multiprocessing
import re

import numpy as np
import pytest

from jaxvg.data import readers, synthetic
from jaxvg.data.frames import FrameReader


def _ensure(root):
  return synthetic.ensure_synthetic(root, 'tiny').val_file


def test_tiny_is_generated_once_and_consistent(tmp_path):
  paths = synthetic.ensure_synthetic(str(tmp_path), 'tiny')
  train = readers.read_split('synthetic', paths.anno_dir, 'train').records
  val = readers.read_split('synthetic', paths.anno_dir, 'val').records
  assert (len(train), len(val)) == (24, 9)
  assert not {r.qid for r in train} & {r.qid for r in val}
  reader = FrameReader(paths.frames_dir)
  for r in train + val:
    assert r.vid in reader and reader.num_frames(r.vid) == r.num_clips == 8
    assert reader.fps(r.vid) == 0.5
    (start, end), = r.relevant_windows
    assert 0 <= start < end <= r.duration
    assert re.fullmatch(r'(a|the) (red|green|blue|yellow) (circle|square|triangle) '
                        r'(appears|moves to the (left|right)|grows|turns \w+)', r.query)
    ids = r.relevant_clip_ids
    np.testing.assert_array_equal(ids, np.arange(start * 0.5, end * 0.5))
    assert r.saliency_scores.shape == (len(ids), 3)
    assert r.saliency_scores.min() >= 0 and r.saliency_scores.max() <= 4
  again = synthetic.ensure_synthetic(str(tmp_path), 'tiny')
  assert again == paths
  # Deterministic: a second root gets byte-identical annotations.
  other = synthetic.ensure_synthetic(str(tmp_path / 'b'), 'tiny')
  assert open(other.train_file).read() == open(paths.train_file).read()


def test_every_video_asks_about_several_shapes_at_different_times(tmp_path):
  """What makes the query necessary: 2-3 queries per video, naming shapes of different colours
  and kinds, over disjoint windows (a model that ignores the query cannot tell them apart, and
  either word of the name picks the shape)."""
  paths = synthetic.ensure_synthetic(str(tmp_path), 'tiny')
  records = readers.read_split('synthetic', paths.anno_dir, 'train').records
  by_video = {}
  for r in records:
    by_video.setdefault(r.vid, []).append(r)
  counts = [len(rs) for rs in by_video.values()]
  assert min(counts[:-1]) >= 2 and max(counts) <= 3        # the last video may be cut short
  for rs in by_video.values():
    names = [re.match(r'(?:a|the) (\w+) (\w+)', r.query).groups() for r in rs]
    colours, shapes = zip(*names)
    assert len(set(colours)) == len(set(shapes)) == len(names)
    spans = sorted(tuple(r.relevant_windows[0]) for r in rs)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))


def test_captions_say_what_a_still_frame_shows():
  rng = np.random.default_rng(0)
  scenes = [synthetic.random_scene(rng) for _ in range(20)]
  assert {len(s) for s in scenes} == {1, 2, 3}
  scene = [{'colour': 'blue', 'shape': 'square', 'y': 112, 'x': 160.0, 'r': 26.0},
           {'colour': 'red', 'shape': 'circle', 'y': 48, 'x': 60.0, 'r': 44.0}]
  assert synthetic.caption(scene) == 'big red circle left, blue square right'
  frame = synthetic.render(scene, 1)[0]
  red = (frame[..., 0] > 200) & (frame[..., 1] < 60)
  assert np.nonzero(red)[1].mean() == pytest.approx(60, abs=1)
  assert red.sum() == pytest.approx(np.pi * 44 ** 2, rel=0.05)     # big: the grown radius


def test_event_is_visible_in_the_frames():
  objects = [{'colour': 'red', 'shape': 'circle', 'y': 112, 'x': 54.0,
              'event': {'kind': 'move_right', 'start': 2, 'end': 6, 'x_to': 170.0}},
             {'colour': 'blue', 'shape': 'square', 'y': 48, 'x': 112.0,
              'event': {'kind': 'appear', 'start': 4, 'end': 6}}]
  frames = synthetic.render(objects, 8)
  red = (frames[..., 0] > 200) & (frames[..., 1] < 60)
  centre_x = [np.nonzero(red[t])[1].mean() for t in range(8)]
  assert centre_x[0] == pytest.approx(54, abs=1) and centre_x[7] == pytest.approx(170, abs=1)
  assert all(a < b for a, b in zip(centre_x[2:6], centre_x[3:7]))    # moves right inside
  blue = (frames[..., 2] > 200) & (frames[..., 0] < 60)
  np.testing.assert_array_equal(blue.any((1, 2)), [0, 0, 0, 0, 1, 1, 0, 0])


def test_racing_processes_produce_one_copy(tmp_path):
  ctx = multiprocessing.get_context('spawn')
  with ctx.Pool(2) as pool:
    files = pool.map(_ensure, [str(tmp_path)] * 2)
  assert files[0] == files[1]
  assert len(open(files[0]).readlines()) == 9
  assert [p.name for p in tmp_path.iterdir()] == [f'tiny-v{synthetic.VERSION}']          # no temporary left


def test_chance_metrics_by_hand():
  # T = 2 clips: windows [0,1), [0,2), [1,2). GT [0,1): IoUs 1, 0.5, 0.
  rows = [{'duration': 4.0, 'relevant_windows': [[0.0, 2.0]]}]
  got = synthetic.chance_metrics(rows, fps=0.5, thresholds=(0.5, 0.7))
  assert got['R1@0.5'] == pytest.approx(200 / 3) and got['R1@0.7'] == pytest.approx(100 / 3)
  assert got['mIoU'] == pytest.approx(50.0)

