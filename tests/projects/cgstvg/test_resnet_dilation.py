"""The ResNet's DC5 option (CG-STVG's VISION_BACKBONE.DILATION) against torchvision's own
`replace_stride_with_dilation` ResNet (tests/fixtures/resnet_dc5_fixtures.py), and what the
option changes downstream: the C5 grid, the synthetic pretraining's cells, the Swin grid guard."""
from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

import cgstvg_seeded as seeded
from jaxvg.errors import UserError
from jaxvg.modules.resnet import ResNet
from jaxvg.projects.cgstvg import synthetic_backbone
from jaxvg.projects.cgstvg.config import base_config
from jaxvg.projects.cgstvg.convert import (_from_official_layout, _to_official_layout,
                                          official_name)
from jaxvg.projects.cgstvg.model import resnet_module
from jaxvg.projects.cgstvg.task import build_model

FIXTURE = pathlib.Path(__file__).parents[2] / 'fixtures' / 'resnet_dc5.npz'
BLOCKS = (1, 1, 1, 2)
PREFIX = 'vis_encoder.0.body.'


def seeded_params(net: ResNet, image: np.ndarray) -> dict:
  """The fixture's torchvision weights, rebuilt from their keys, in jaxvg's layout."""
  shapes = jax.eval_shape(net.init, jax.random.key(0), jnp.asarray(image))['params']
  flat = {}
  for path, leaf in traverse_util.flatten_dict(shapes).items():
    key = official_name(('resnet',) + path)
    assert key.startswith(PREFIX)
    torch_shape = _to_official_layout(path, np.empty(leaf.shape, np.bool_)).shape
    flat[path] = _from_official_layout(path, seeded.seeded_array(key[len(PREFIX):], torch_shape))
  return traverse_util.unflatten_dict(flat)


@pytest.mark.parametrize('dilate', [False, True])
def test_c5_equals_torchvision(dilate):
  ref = np.load(FIXTURE)
  net = ResNet(BLOCKS, 64, dilate_c5=dilate)
  out = net.apply({'params': seeded_params(net, ref['image'])}, jnp.asarray(ref['image']))
  expected = ref['c5_dc5' if dilate else 'c5']
  assert out.shape == expected.shape
  np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4,
                             atol=1e-4 * np.abs(expected).max())


def test_dilation_doubles_the_grid_with_the_same_parameters():
  image = jnp.zeros((1, 96, 128, 3))
  plain, dc5 = ResNet((1, 1, 1, 1), 8), ResNet((1, 1, 1, 1), 8, dilate_c5=True)
  params = plain.init(jax.random.key(0), image)['params']
  assert jax.tree.structure(params) == jax.tree.structure(dc5.init(jax.random.key(0), image)['params'])
  assert plain.apply({'params': params}, image).shape[1:3] == (3, 4)
  assert dc5.apply({'params': params}, image).shape[1:3] == (6, 8)
  assert (plain.stride, dc5.stride) == (32, 16)


def test_synthetic_pretraining_targets_follow_the_grid():
  """The toy ResNet's dense targets are laid on the grid its dilated C5 has: one per 16 px cell,
  and a pretraining step runs on them."""
  config = base_config()
  config.model.resnet, config.model.resnet_width = 'resnet14', 4
  config.model.resnet_dilation = True
  config.data.height, config.data.width = 96, 128
  detector = synthetic_backbone.CellDetector(resnet_module(config.model))
  outputs = jax.eval_shape(lambda x: detector.init_with_output(jax.random.key(0), x)[0],
                           jnp.zeros((1, 96, 128, 3)))
  assert outputs.shape[1:3] == (6, 8)
  grid = synthetic_backbone.grid_shape(96, 128, detector.resnet.stride)
  _, targets = synthetic_backbone.scene_batch(0, 0, 2, grid)
  assert targets.shape[1:3] == outputs.shape[1:3]
  _, history = synthetic_backbone.pretrain(config, steps=1, batch_size=2)
  assert np.isfinite(history[0]['loss'])
  assert 'dc5' in synthetic_backbone.cache_path(config)


def test_dilation_with_the_stride_32_swin_branch_is_refused():
  config = base_config()
  config.model.resnet_dilation = True
  with pytest.raises(UserError, match='stride-32 map, but the ResNet C5 is at stride 16'):
    build_model(config)
