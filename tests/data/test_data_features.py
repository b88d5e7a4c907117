"""Cached features: the official layout, memory-mapped reads, shape checks."""
import numpy as np
import pytest

from jaxvg.projects.r2tuning import config as r2_config
from jaxvg.data.features import FeatureCache


def test_official_layout_is_memory_mapped(tmp_path):
  config = r2_config.base()
  config.data.feature_dir = str(tmp_path)
  (tmp_path / 'clip_b32_vid_k4').mkdir()
  (tmp_path / 'clip_b32_txt_k4').mkdir()
  video = np.random.default_rng(0).standard_normal((3, 4, 50, 768)).astype(np.float16)
  query = np.random.default_rng(1).standard_normal((7, 4, 512)).astype(np.float16)
  np.save(tmp_path / 'clip_b32_vid_k4' / 'vid_a.npy', video)
  np.save(tmp_path / 'clip_b32_txt_k4' / '42.npy', query)
  cache = FeatureCache.from_config(config)
  got = cache.video('vid_a')
  assert isinstance(got, np.memmap) and got.dtype == np.float16
  np.testing.assert_array_equal(got, video)
  np.testing.assert_array_equal(cache.query('42'), query)
  assert cache.num_clips('vid_a') == 3


def test_wrong_width_and_missing_file_are_named(tmp_path):
  cache = FeatureCache(str(tmp_path), str(tmp_path), num_layers=2, num_tokens=3, video_dims=8,
                       query_dims=4)
  np.save(tmp_path / 'v.npy', np.zeros((5, 2, 3, 16), np.float16))
  with pytest.raises(ValueError, match=r'v\.npy.*\(5, 2, 3, 16\).*\(N, 2, 3, 8\)'):
    cache.video('v')
  with pytest.raises(FileNotFoundError, match='missing.npy'):
    cache.query('missing')
