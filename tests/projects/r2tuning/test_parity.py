"""Parity with an independent PyTorch re-implementation of the official forward (fixture made by
tests/fixtures/r2tuning_torch_reference.py), loaded through the official-checkpoint converter."""
import pathlib

import jax
import numpy as np
import pytest

from jaxvg.projects.r2tuning import config as r2_config
from jaxvg.projects.r2tuning.convert import load_official
from jaxvg.projects.r2tuning.model import R2Tuning

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / 'fixtures'


@pytest.fixture(scope='module')
def fixture():
  with np.load(FIXTURES / 'r2tuning_official_tiny.npz') as f:
    return dict(f)


def tiny_config(official_padding):
  c = r2_config.base()
  c.model.update(dict(dims=32, video_dims=16, query_dims=12, num_tokens=5, num_heads=4,
                      official_padding=official_padding))
  return c


@pytest.mark.parametrize('official_padding', [False, True])
def test_forward_matches_torch_reference(fixture, official_padding):
  c = tiny_config(official_padding)
  state = {k[len('state/'):]: v for k, v in fixture.items() if k.startswith('state/')}
  params = load_official(state, c)
  video, query = fixture['input_video'], fixture['input_query']
  batch = dict(video=video, query=query, video_mask=np.ones(video.shape[:2], bool),
               query_mask=np.ones(query.shape[:2], bool))
  out = jax.jit(lambda p, b: R2Tuning(c.model).apply({'params': p}, b))(params, batch)
  for name in ('h', 'query_emb', 'coll_v', 'cls_logits', 'reg', 'saliency'):
    np.testing.assert_allclose(out[name], fixture[f'output/{name}'], atol=1e-4, rtol=1e-4,
                               err_msg=name)


def test_torch_checkpoint_file_loads_like_the_state_dict(fixture):
  c = tiny_config(False)
  from_pth = load_official(FIXTURES / 'r2tuning_official_tiny.pth', c)
  state = {k[len('state/'):]: v for k, v in fixture.items() if k.startswith('state/')}
  jax.tree.map(np.testing.assert_array_equal, from_pth, load_official(state, c))


def test_official_padding_matches_torch_on_a_padded_batch(fixture):
  """official_padding=True reproduces the official padded-batch training forward everywhere,
  including padded positions (TEF/PE over the padded length, padded tokens in the pooling max)."""
  c = tiny_config(True)
  state = {k[len('state/'):]: v for k, v in fixture.items() if k.startswith('state/')}
  batch = dict(video=fixture['padded_video'], query=fixture['padded_query'],
               video_mask=fixture['padded_video_mask'], query_mask=fixture['padded_query_mask'])
  out = jax.jit(lambda p, b: R2Tuning(c.model).apply({'params': p}, b))(
      load_official(state, c), batch)
  for name in ('h', 'query_emb', 'coll_v', 'cls_logits', 'reg'):
    np.testing.assert_allclose(out[name], fixture[f'padded_output/{name}'], atol=1e-4, rtol=1e-4,
                               err_msg=name)
