"""CG-STVG's frozen parts: the Video-Swin frozen backbone, the feature cache written by
`python -m jaxvg.prepare features cgstvg`, and the tube pipeline reading it."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg import configs
from jaxvg.data import frames as frames_lib
from jaxvg.data.tube_features import CachedTubeData, TubeFeatureCache
from jaxvg.data.tubes import TubeRecord
from jaxvg.prepare import cgstvg_features
from jaxvg.projects.cgstvg import backbone
from jaxvg.projects.cgstvg.model import CGSTVG

# The synthetic config with a tiny Swin branch (window (4, 3, 3): 7 frames pad and shift in time).
TINY_SWIN_CONFIG = '''
from configs.cgstvg import synthetic


def get_config(arg=''):
  c = synthetic.get_config()
  c.data.height, c.data.width = 64, 96   # the canvas the shapes below are checked against
  c.data.test_halves = True              # the cache also holds the tower run on each half
  c.model.use_swin = True
  c.model.resnet_dilation = False        # the Swin branch needs the stride-32 C5 grid
  c.model.swin_dims = 32
  c.model.swin_weights = ''               # seeded random: no pretraining in tests
  t = c.model.swin_tower
  t.embed_dim, t.depths, t.heads, t.window = 4, (2, 2, 2, 2), (1, 1, 2, 2), (4, 3, 3)
  t.patch = (1, 4, 4)
  return c
'''
# video key -> (frames, height, width), smaller than the 64 x 96 canvas of the synthetic config;
# 'broken' is truncated after writing.
VIDEOS = {'a': (7, 64, 64), 'b': (5, 64, 64), 'broken': (4, 64, 64)}


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp('cgstvg_features')
  config_path = root / 'tiny_swin.py'
  config_path.write_text(TINY_SWIN_CONFIG)
  frames_dir, rng = str(root / 'frames'), np.random.default_rng(0)
  videos = {}
  for key, (t, h, w) in VIDEOS.items():
    videos[key] = rng.integers(0, 256, (t, h, w, 3), np.uint8)
    frames_lib.write_video(frames_dir, key, videos[key], 3.2, 'raw', frame_ids=np.arange(t) * 3)
  frames_lib.build_index(frames_dir)
  broken = os.path.join(frames_dir, frames_lib.VIDEOS_DIR, 'broken.array_record')
  with open(broken, 'r+b') as f:
    f.truncate(100)
  out = str(root / 'features')
  status = cgstvg_features.main(['--config', str(config_path), '--frames', frames_dir,
                                 '--out', out, '--random', '--chunk', '4'])
  config = configs.load(str(config_path))
  return dict(config=config, videos=videos, out=out, status=status)


def direct_encoder(config):
  return backbone.FeatureEncoder(config, *cgstvg_features.frozen_params(config, '', ''), chunk=4)


def direct_features(config, frames):
  return direct_encoder(config)(frames)


def test_a_broken_video_is_skipped_and_reported(setup, capsys):
  assert setup['status'] == 1
  with open(os.path.join(setup['out'], 'failures.json')) as f:
    failures = json.load(f)
  assert list(failures) == ['broken']
  assert TubeFeatureCache(setup['out']).keys() == ['a', 'b']
  assert not os.path.exists(os.path.join(setup['out'], 'cgstvg_c5', 'broken.npy'))


def test_cache_equals_the_backbones_direct_output(setup):
  config, videos = setup['config'], setup['videos']
  cache = TubeFeatureCache(setup['out'])
  for key in ('a', 'b'):
    cached = cache.rows(key, np.arange(len(videos[key])))
    direct = direct_features(config, videos[key])
    for name in ('c5', 'swin'):
      assert cached[name].dtype == np.float16 and np.isfinite(cached[name]).all()
      assert cached[name].shape == direct[name].shape
      np.testing.assert_allclose(cached[name], direct[name], rtol=2e-3, atol=2e-3)
  # ... and the frozen backbone of the step, on frames padded to a bucket of 8
  frozen = backbone.frozen_swin(config)
  batch = {'frames': np.zeros((2, 8, 64, 64, 3), np.uint8), 'frame_mask': np.zeros((2, 8), bool),
           'pixel_mask': np.ones((2, 64, 64), bool)}
  for i, key in enumerate(('a', 'b')):
    batch['frames'][i, :len(videos[key])] = videos[key]
    batch['frame_mask'][i, :len(videos[key])] = True
  swin = jax.jit(frozen.encode)(frozen.params, batch)['swin']
  for i, key in enumerate(('a', 'b')):
    n = len(videos[key])
    np.testing.assert_allclose(cache.rows(key, np.arange(n))['swin'], swin[i, :n], rtol=2e-3,
                               atol=2e-3)


def test_tube_pipeline_reads_the_cache_into_model_inputs(setup):
  config = setup['config'].copy_and_resolve_references()
  config.data.features_dir = setup['out']
  config.data.test_halves = False
  data = CachedTubeData.from_config(config, train=False, seed=0)
  records = [TubeRecord(vid=key, qid=i, query='q', num_frames=3 * t, fps=25.0, width=w,
                        height=h, span=np.array([3, 12]), box_frames=np.arange(3, 12),
                        boxes=np.tile(np.array([[4, 4, 30, 40]], np.float32), (9, 1)),
                        video_key=key)
             for i, (key, (t, h, w)) in enumerate(list(VIDEOS.items())[:2])]
  examples = [data.example(r, epoch=0, index=i) for i, r in enumerate(records)]
  batch, meta = data.collate(examples + [None], data.length(records[0]))
  assert batch['c5'].shape == (3, 16, 2, 3, 32 * config.model.resnet_width)
  assert batch['swin'].shape == (3, 16, 2, 3, 32)
  assert batch['grid_mask'][:, 0].tolist() == [[True, True, False]] * 2 + [[False] * 3]
  assert 'frames' not in batch and batch['frame_mask'].sum(1).tolist() == [7, 5, 0]
  cache = TubeFeatureCache(setup['out'])
  np.testing.assert_array_equal(batch['c5'][1, :5, :, :2], cache.rows('b', np.arange(5))['c5'])
  np.testing.assert_array_equal(meta['frame_ids'][0, :7], np.arange(7) * 3)
  batch['tokens'] = np.ones((3, 16), np.int32)
  batch['text_mask'] = np.ones((3, 16), bool)
  outputs = jax.eval_shape(lambda b: CGSTVG(config).init_with_output(jax.random.key(0), b)[0],
                           jax.tree.map(jnp.asarray, batch))
  assert outputs['boxes'].shape == (config.model.dec_layers, 3, 16, 4)


def test_the_test_halves_read_the_tower_run_on_each_half(setup):
  config = setup['config'].copy_and_resolve_references()
  config.data.features_dir = setup['out']
  data = CachedTubeData.from_config(config, train=False, seed=0)
  record = TubeRecord(vid='a', qid=0, query='q', num_frames=21, fps=25.0, width=64, height=64,
                      span=np.array([3, 12]), box_frames=np.arange(3, 12),
                      boxes=np.tile(np.array([[4, 4, 30, 40]], np.float32), (9, 1)))
  batch, meta = data.collate([data.example(record, epoch=0, index=0)], data.length(record))
  assert batch['frame_mask'].sum(1).tolist() == [4, 3]
  assert meta['frame_ids'][1, :3].tolist() == [3, 9, 15]
  halves = TubeFeatureCache(setup['out'], {'swin': 'swin_halves'}).rows('a', np.arange(7))['swin']
  video, encoder = setup['videos']['a'], direct_encoder(setup['config'])
  for parity, n in ((0, 4), (1, 3)):     # the tower on the half alone, as the official test
    alone = backbone._swin_clip(encoder.arch, encoder.swin_variables, video[parity::2],
                                encoder.data)
    np.testing.assert_allclose(halves[parity::2], alone, rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(batch['swin'][parity, :n, :2, :2], halves[parity::2])
