"""Grain pipeline: shapes, padding, bucketing, sharding, exact resume, workers, frames path."""
import json
import sys
import types

import numpy as np
import pytest

from jaxvg.projects.r2tuning import config as r2_config
from jaxvg.data import pipeline, synthetic

K, P, DV, DQ = 2, 3, 8, 4
LENGTHS = [5, 12, 7, 20, 9, 3, 15, 6, 11, 8]       # clips per video (fps 0.5)


@pytest.fixture
def config(tmp_path):
  """A 10-query QVH-schema split with tiny features: video i has LENGTHS[i] clips."""
  rng = np.random.default_rng(0)
  (tmp_path / 'vid').mkdir()
  (tmp_path / 'txt').mkdir()
  rows = []
  for i, t in enumerate(LENGTHS):
    np.save(tmp_path / 'vid' / f'v{i}.npy', rng.standard_normal((t, K, P, DV)).astype(np.float16))
    np.save(tmp_path / 'txt' / f'{100 + i}.npy',
            rng.standard_normal((3 + i % 5, K, DQ)).astype(np.float16))
    rows.append({'qid': 100 + i, 'query': f'q{i}', 'duration': 2 * t, 'vid': f'v{i}',
                 'relevant_windows': [[0, 2 * min(t, 3)]], 'relevant_clip_ids': [0, 1],
                 'saliency_scores': [[4, 4, 4], [2, 2, 2]]})
  (tmp_path / 'highlight_train_release.jsonl').write_text(
      ''.join(json.dumps(r) + '\n' for r in rows))
  c = r2_config.base()
  c.data.anno_dir = str(tmp_path)
  c.data.video_feature_dir = str(tmp_path / 'vid')
  c.data.query_feature_dir = str(tmp_path / 'txt')
  c.data.min_video_len = -1
  c.data.t_buckets = (8, 16, 32)
  c.data.l_buckets = (4, 8)
  c.model.num_layers, c.model.num_tokens, c.model.video_dims, c.model.query_dims = K, P, DV, DQ
  c.train.batch_size = 4
  c.train.eval_batch_size = 4
  c.train.epochs = 3
  c.data.tmp = str(tmp_path)
  return c


def _loader(config, **kw):
  kw.setdefault('train', True)
  return pipeline.make_loader(config, 'train', process_index=kw.pop('pi', 0),
                              process_count=kw.pop('pc', 1), **kw)


def test_eval_batches_shapes_values_and_padding(config):
  loader = _loader(config, train=False)
  assert loader.batches_per_epoch == 3 and len(loader) == 3
  batches = list(loader)
  batch, meta = batches[0]
  assert meta['qid'] == [100, 101, 102, 103]           # file order
  assert batch['video'].shape == (4, 32, K, P, DV)      # longest is 20 clips -> bucket 32
  assert batch['query'].shape == (4, 8, K, DQ)          # longest is 6 tokens -> bucket 8
  np.testing.assert_array_equal(batch['video_mask'].sum(1), LENGTHS[:4])
  np.testing.assert_array_equal(batch['query_mask'].sum(1), [3, 4, 5, 6])
  video1 = np.load(f"{config.data.tmp}/vid/v1.npy")
  np.testing.assert_array_equal(batch['video'][1, :12], video1)
  assert not batch['video'][1, 12:].any()
  np.testing.assert_allclose(batch['saliency'][0, :3], [1, 0.5, 0])
  np.testing.assert_allclose(batch['windows'][0, 0], [0, 3])  # 6 s x 0.5 clips/s
  assert batch['window_mask'].sum() == 4
  assert batch['windows'].shape == (4, config.data.max_windows, 2)
  assert set(batch['pos_clip'].tolist()) <= {0, 1}
  last, last_meta = batches[-1]
  np.testing.assert_array_equal(last['sample_mask'], [True, True, False, False])
  assert last['video'].shape[1] == 16                  # 11 clips -> bucket 16
  assert last_meta['qid'] == [108, 109, None, None]
  assert not last['video_mask'][2:].any() and not last['window_mask'][2:].any()
  assert loader.ground_truth()[0]['qid'] == 100


def test_shuffle_per_epoch_with_repeat(config):
  config.data.repeat = 2
  loader = _loader(config)
  assert loader.batches_per_epoch == 5                 # 20 samples / 4
  epochs = [[q for b in range(e * 5, e * 5 + 5) for q in loader.batch(b)[1]['qid']]
            for e in range(2)]
  for qids in epochs:
    assert sorted(qids) == sorted(list(range(100, 110)) * 2)
  assert epochs[0] != epochs[1]


def test_process_shards_reassemble_the_global_batch(config):
  whole = _loader(config)
  parts = [_loader(config, pi=p, pc=2) for p in range(2)]
  for b in range(len(whole)):
    batch, meta = whole.batch(b)
    halves = [part.batch(b) for part in parts]
    assert halves[0][1]['qid'] + halves[1][1]['qid'] == meta['qid']
    for h in halves:
      assert h[0]['sample_mask'].shape == (2,)
    np.testing.assert_array_equal(
        np.concatenate([h[0]['pos_clip'] for h in halves]), batch['pos_clip'])
    # Every process pads to the same static shapes (the global arrays must agree), and the
    # real rows equal the single-process batch's.
    assert {k: halves[0][0][k].shape for k in halves[0][0]} == \
        {k: halves[1][0][k].shape for k in halves[1][0]}
    t_len = halves[0][0]['video'].shape[1]
    assert t_len >= batch['video'].shape[1]
    video = np.concatenate([h[0]['video'] for h in halves])
    np.testing.assert_array_equal(video[:, :batch['video'].shape[1]], batch['video'])
    assert not video[:, batch['video'].shape[1]:].any()


def _same(a, b):
  assert a[1]['qid'] == b[1]['qid']
  assert a[0].keys() == b[0].keys()
  for key in a[0]:
    np.testing.assert_array_equal(a[0][key], b[0][key])


def test_restore_mid_epoch_yields_identical_remaining_batches(config):
  loader = _loader(config)
  it = iter(loader)
  for _ in range(4):                                   # into the second epoch
    next(it)
  state = it.get_state()
  rest = list(it)
  assert len(rest) == len(loader) - 4
  fresh = iter(_loader(config))
  fresh.set_state(state)
  resumed = list(fresh)
  assert len(resumed) == len(rest)
  for a, b in zip(rest, resumed):
    _same(a, b)


def test_worker_processes_match_in_process(config):
  config.train.epochs = 1
  expected = list(_loader(config))
  config.data.num_workers = 1
  for a, b in zip(expected, list(_loader(config))):
    _same(a, b)


def test_too_long_video_and_too_many_windows_are_named(config):
  config.data.t_buckets = (8, 16)
  with pytest.raises(ValueError, match="'v3'.*20 clips"):
    _loader(config, train=False).batch(0)
  config.data.truncate = True
  batch, _ = _loader(config, train=False).batch(0)
  assert batch['video_mask'][3].sum() == 16
  config.data.max_windows = 0
  with pytest.raises(ValueError, match='qid 100'):
    _loader(config, train=False).batch(0)


def test_synthetic_frames_path(tmp_path, monkeypatch):
  fake = types.ModuleType('jaxvg.clip')
  fake.tokenize = lambda texts: np.array(
      [[49406] + [len(t)] + [49407] + [0] * 74 for t in texts], np.int32)
  monkeypatch.setitem(sys.modules, 'jaxvg.clip', fake)
  c = r2_config.base()
  c.data.dataset, c.data.source = 'synthetic', 'frames'
  c.data.synthetic_root, c.data.synthetic_size = str(tmp_path), 'tiny'
  c.data.t_buckets = (8, 16)
  c.train.eval_batch_size = 8
  loader = pipeline.make_loader(c, 'val', train=False, process_index=0, process_count=1)
  batch, meta = next(iter(loader))
  assert batch['frames'].shape == (8, 8, 224, 224, 3) and batch['frames'].dtype == np.uint8
  assert batch['tokens'].shape == (8, 77) and batch['tokens'].dtype == np.int32
  np.testing.assert_array_equal(batch['query_mask'].sum(1), 3)
  assert 'video' not in batch and 'query' not in batch
  paths = synthetic.ensure_synthetic(str(tmp_path), 'tiny')
  rows = [json.loads(line) for line in open(paths.val_file)]
  assert meta['qid'] == [r['qid'] for r in rows[:8]]   # the first batch, in file order
  # Saliency targets follow the QVH rule on the generated scores.
  row = rows[0]
  want = np.zeros(8, np.float32)
  want[row['relevant_clip_ids']] = np.sum(row['saliency_scores'], 1) / 12
  np.testing.assert_allclose(batch['saliency'][0], want)
