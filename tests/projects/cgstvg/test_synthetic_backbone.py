"""The toy ResNet pretrained on the synthetic renderer, and how its weights enter a CG-STVG run."""
import dataclasses

import numpy as np
import pytest

from jaxvg.data import synthetic_tubes
from jaxvg.errors import UserError
from jaxvg.projects.cgstvg import synthetic_backbone
from jaxvg.projects.cgstvg import task as cgstvg_task
from jaxvg.train import trainer

from jaxvg_testing import load_config
from toytask import task as toy


def tiny_config():
  return load_config('cgstvg/synthetic.py:tiny')


def test_scene_targets_name_the_topmost_shape_of_each_cell():
  rng = np.random.default_rng(0)
  grid = (3, 4)
  cell = (synthetic_tubes.HEIGHT / 3, synthetic_tubes.WIDTH / 4)
  for _ in range(20):
    objects = synthetic_backbone.random_scene(rng)
    frame, targets = synthetic_backbone.scene_example(objects, grid)
    assert frame.shape == (synthetic_tubes.HEIGHT, synthetic_tubes.WIDTH, 3)
    expected = {}
    for obj in objects:             # the last shape drawn over a cell owns it
      expected[int(obj['y'] // cell[0]), int(obj['x'] // cell[1])] = obj
    assert {tuple(ix) for ix in np.argwhere(targets[..., 0] == 1)} == set(expected)
    for (row, col), obj in expected.items():
      t = targets[row, col]
      assert synthetic_backbone.COLOURS[int(t[1])] == obj['colour']
      assert synthetic_backbone.SHAPES[int(t[2])] == obj['shape']
      np.testing.assert_allclose([(col + t[4]) * cell[1], (row + t[5]) * cell[0]],
                                 [obj['x'], obj['y']], rtol=1e-5)
      # the shape's colour is at its centre unless a later shape covers it
      y, x = int(obj['y']), int(obj['x'])
      covered = any(o is not obj and objects.index(o) > objects.index(obj)
                    and abs(o['x'] - x) <= o['radius'] and abs(o['y'] - y) <= o['radius']
                    for o in objects)
      if not covered and obj['shape'] != 'triangle':
        assert tuple(frame[y, x]) == synthetic_tubes.COLOURS[obj['colour']]


def test_pretraining_learns_to_find_and_name_shapes():
  _, history = synthetic_backbone.pretrain(tiny_config(), steps=60, batch_size=16)
  first = {k: np.mean([h[k] for h in history[:5]]) for k in history[0]}
  last = {k: np.mean([h[k] for h in history[-5:]]) for k in history[0]}
  assert last['loss'] < 0.6 * first['loss'], (first, last)
  assert last['colour'] < 0.8 * first['colour'], (first, last)
  assert last['objectness'] < 0.75 * first['objectness'], (first, last)


def test_run_starts_from_the_pretrained_subtree():
  run = trainer.build_run(toy.get_config())       # the toy task has nothing pretrained
  assert run.pretrained is None
  fresh = trainer.init_params(run)
  kernel = fresh['head']['kernel']
  marked = {'head': {'kernel': np.full(kernel.shape, 0.25, np.float32)}}
  params = trainer.init_params(dataclasses.replace(run, pretrained=marked))
  np.testing.assert_array_equal(params['head']['kernel'], 0.25)
  np.testing.assert_array_equal(params['body']['kernel'], fresh['body']['kernel'])
  wrong = {'head': {'kernel': np.zeros((3, 2), np.float32)}}
  with pytest.raises(UserError, match='head/kernel'):
    trainer.init_params(dataclasses.replace(run, pretrained=wrong))
  assert cgstvg_task.pretrained_params(tiny_config()) is None     # resnet_weights ''


def test_unknown_resnet_weights_is_a_user_error():
  config = tiny_config()
  config.model.resnet_weights = 'imagenet'
  run = trainer.build_run(config)         # restoring a checkpoint never asks for it
  with pytest.raises(UserError, match='resnet_weights'):
    trainer.init_params(run)
