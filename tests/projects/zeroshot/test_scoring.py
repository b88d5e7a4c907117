"""Host-side scoring and grid pooling against the official torch operations (fixture made by
tests/fixtures/zeroshot_llava_fixtures.py: `spatial_llm_att`'s track scores,
`evaluation_llava_att`'s frame scores and its temporal rule copied verbatim, torch interpolate
and avg_pool2d)."""
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.modules.pooling import average_pool_grid, resize_grid_bilinear
from jaxvg.projects.zeroshot import pipeline

REF = pathlib.Path(__file__).resolve().parents[2] / 'fixtures' / 'zeroshot_scoring.npz'


@pytest.fixture(scope='module')
def ref():
  return dict(np.load(REF))


def test_track_and_frame_scores_and_span(ref):
  f_n = ref['rela'].shape[0]
  g = int(np.sqrt(ref['rela'].shape[1]))
  rela = ref['rela'].reshape(f_n, g, g)
  masks = ref['masks'].astype(np.float32)
  np.testing.assert_allclose(pipeline.track_scores(rela, masks), ref['track_scores'], rtol=1e-5)
  frames = pipeline.frame_scores(rela, masks)
  np.testing.assert_allclose(frames, ref['frame_scores'], rtol=1e-5)
  spans = [pipeline.grow_span(frames[p], 10) for p in range(len(frames))]
  np.testing.assert_array_equal(spans, ref['spans'])


def test_grow_span_stops_on_a_tie_and_at_the_edges():
  assert pipeline.grow_span(np.array([0.2, 0.2, 1.0, 0.2, 0.2]), 10) == (2, 2)  # tie stops
  assert pipeline.grow_span(np.array([1.0, 0.9, 0.5, 0.1]), 2) == (0, 2)  # left edge -> -100


@pytest.mark.parametrize('size', [14, 6])
def test_bilinear_pooling_equals_torch_interpolate(ref, size):
  grid = jnp.asarray(ref['grid']).transpose(0, 2, 3, 1)  # NCHW -> NHWC
  out = resize_grid_bilinear(grid, (size, size)).transpose(0, 3, 1, 2)
  np.testing.assert_allclose(out, ref[f'bilinear{size}'], atol=1e-5)


def test_average_pooling_equals_torch_avg_pool2d(ref):
  out = average_pool_grid(jnp.asarray(ref['clip_grid']).transpose(0, 2, 3, 1), 4)
  np.testing.assert_allclose(out.transpose(0, 3, 1, 2), ref['average6'], atol=2e-6)
