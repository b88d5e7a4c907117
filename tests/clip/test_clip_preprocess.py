"""Host crop + device normalisation equal the official torchvision pipeline."""
import pathlib

import numpy as np

from jaxvg.clip import preprocess
from jaxvg.modules.clip import normalize_frames

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / 'fixtures'


def test_matches_torchvision_resize_crop_normalize():
  ref = np.load(FIXTURES / 'clip_preprocess.npz')
  for seed, height, width, size in ref['cases']:
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    crop = preprocess(image, int(size))
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(normalize_frames(crop), ref[f'case{seed}'], rtol=0, atol=1e-5)
