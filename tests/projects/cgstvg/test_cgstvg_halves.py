"""The official test protocol: a test clip runs as its even and its odd frames (two batch rows)
and the post-processor merges them, against the official `do_eval` on the same per-frame model
outputs (`tests/fixtures/cgstvg_make_halves_fixture.py`)."""
import json
import pathlib

import ml_collections
import numpy as np
import pytest

from jaxvg.data import frames as frames_lib
from jaxvg.data.tube_examples import TubeData
from jaxvg.data.tubes import TubeRecord
from jaxvg.projects.cgstvg.postprocess import postprocess

FIXTURE = pathlib.Path(__file__).parents[2] / 'fixtures' / 'cgstvg_halves.json'
OFFICIAL = json.loads(FIXTURE.read_text())


def config(frames_dir, max_frames=8, test_halves=True):
  return ml_collections.ConfigDict({'data': {
      'dataset': 'hcstvg', 'frames_dir': frames_dir, 'max_frames': max_frames,
      'frame_buckets': (2, 4, 8), 'height': 8, 'width': 8, 'test_halves': test_halves}})


def record(qid, key, frame_ids, gt_positions):
  start, end = frame_ids[gt_positions[0]], frame_ids[gt_positions[1]] + 1
  box_frames = np.arange(start, end)
  h, w = OFFICIAL['ori_size']
  return TubeRecord(vid=key, qid=qid, query='q', num_frames=frame_ids[-1] + 1, fps=25.0,
                    width=w, height=h, span=np.array([start, end]), box_frames=box_frames,
                    boxes=np.tile(np.array([[10, 10, 50, 60]], np.float32), (len(box_frames), 1)),
                    video_key=key)


@pytest.fixture(scope='module')
def frames_dir(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('halves') / 'frames')
  for k, case in enumerate(OFFICIAL['cases']):
    ids = np.asarray(case['frame_ids'])
    frames_lib.write_video(root, f'v{k}', np.zeros((len(ids), 8, 8, 3), np.uint8), 6.4, 'raw',
                           frame_ids=ids)
  frames_lib.build_index(root)
  return root


def table_outputs(meta, cases):
  """The fixture's model: per raw frame id, its box and start/end logits (one decoder layer)."""
  b, t = meta['frame_ids'].shape
  boxes, sted = np.full((1, b, t, 4), 0.5, np.float32), np.zeros((1, b, t, 2), np.float32)
  for i in np.flatnonzero(meta['sample_mask']):
    table = cases[meta['qid'][i]]['table']
    for j in np.flatnonzero(meta['frame_mask'][i]):
      entry = table[str(meta['frame_ids'][i, j])]
      boxes[0, i, j], sted[0, i, j] = entry['box'], entry['sted']
  return {'boxes': boxes, 'sted': sted}


def test_merged_tube_equals_the_official_test_loop(frames_dir):
  cfg = config(frames_dir)
  data = TubeData.from_config(cfg, train=False, seed=0)
  cases = OFFICIAL['cases']
  records = [record(k, f'v{k}', c['frame_ids'], c['gt_positions']) for k, c in enumerate(cases)]
  examples = [data.example(r, epoch=0, index=k) for k, r in enumerate(records)]
  batch, meta = data.collate(examples + [None], max(data.length(r) for r in records))
  assert batch['frame_mask'].shape == (2 * (len(cases) + 1), 8)   # two rows per sample
  rows = {row['qid']: row for row in postprocess(table_outputs(meta, cases), meta, cfg)}
  assert sorted(rows) == list(range(len(cases)))
  for k, case in enumerate(cases):
    official_start, official_end = case['sted']        # [start, end + 1) in raw frames
    assert rows[k]['span'] == [official_start, official_end - 1], k
    assert rows[k]['frame_ids'] == case['box_frames']
    np.testing.assert_allclose(rows[k]['boxes'], case['boxes'], atol=1e-3)


def test_the_halves_cover_every_sampled_frame_once(frames_dir):
  data = TubeData.from_config(config(frames_dir), train=False, seed=0)
  for k, case in enumerate(OFFICIAL['cases']):
    r = record(k, f'v{k}', case['frame_ids'], case['gt_positions'])
    batch, meta = data.collate([data.example(r, epoch=0, index=0)], data.length(r))
    even, odd = (meta['frame_ids'][i][meta['frame_mask'][i]] for i in (0, 1))
    assert even.tolist() == case['frame_ids'][0::2] and odd.tolist() == case['frame_ids'][1::2]
    assert data.length(r) == len(even)
    for i in (0, 1):     # each half's GT span positions index its own frames
      span = batch['span'][i]
      inside = np.flatnonzero(batch['in_span'][i])
      if len(inside):
        assert span.tolist() == [inside[0], inside[-1]]


def test_max_frames_bounds_each_half_and_training_is_one_pass(frames_dir):
  case = OFFICIAL['cases'][1]                           # 10 stored frames
  r = record(0, 'v1', case['frame_ids'], case['gt_positions'])
  data = TubeData.from_config(config(frames_dir, max_frames=4), train=False, seed=0)
  batch, meta = data.collate([data.example(r, epoch=0, index=0)], data.length(r))
  assert batch['frame_mask'].sum(1).tolist() == [4, 4]
  kept = np.sort(meta['frame_ids'][batch['frame_mask']])
  ids = np.asarray(case['frame_ids'])
  assert kept.tolist() == ids[np.linspace(0, 9, 8).astype(int)].tolist()
  train = TubeData.from_config(config(frames_dir, max_frames=4), train=True, seed=0)
  batch, _ = train.collate([train.example(r, epoch=0, index=0)], train.length(r))
  assert batch['frame_mask'].shape == (1, 4) and batch['frame_mask'].all()


def test_one_frame_clip_has_no_odd_row(frames_dir):
  data = TubeData.from_config(config(frames_dir), train=False, seed=0)
  example = data.example(record(0, 'v3', [4, 8], (0, 1)), epoch=0, index=0)
  example = {**example, **{key: example[key][:1] for key in
                           ('frames', 'frame_ids', 'boxes', 'box_mask', 'in_span')}}
  batch, meta = data.collate([example], 1)
  assert batch['sample_mask'].tolist() == [True, False]
  assert meta['frame_ids'][0, 0] == 4


def test_predictor_samples_the_official_test_clip():
  from jaxvg.data import stvg_frames
  from jaxvg.projects.cgstvg.predictor import sampled_frame_ids
  cfg = ml_collections.ConfigDict({'data': {'dataset': 'hcstvg', 'sample_fps': 3.2,
                                            'max_frames': 200, 'test_halves': True}})
  for num_frames, fps in ((500, 25.0), (600, 30.0), (479, 23.95)):
    ids = sampled_frame_ids(cfg, num_frames, fps)
    assert ids.tolist() == stvg_frames.sample_ids((0, num_frames), fps, sample_fps=6.4).tolist()
    # the training clip (3.2 fps over the raw frames) is the same rule over the test clip
    train = stvg_frames.sample_ids((0, num_frames), fps, sample_fps=3.2)
    assert stvg_frames.fps_sample_ids(ids, fps, 3.2).tolist() == train.tolist()
  cfg.data.max_frames = 16
  assert len(sampled_frame_ids(cfg, 500, 25.0)) == 32
  cfg.data.test_halves = False
  assert len(sampled_frame_ids(cfg, 500, 25.0)) == 16
