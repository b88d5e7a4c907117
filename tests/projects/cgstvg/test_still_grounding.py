"""CG-STVG trained to box the shape a caption names in still scenes (the measurement behind the
synthetic run's diagnosis, benchmarks/cgstvg_still_grounding.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.data import synthetic_tubes
from jaxvg.data.tube_examples import tokenizer_folder
from jaxvg.projects.cgstvg import still_grounding
from jaxvg.projects.cgstvg import task as cgstvg_task
from jaxvg.train import trainer
from jaxvg.text.roberta_tokenizer import RobertaTokenizer

from jaxvg_testing import load_config


def tiny_config():
  return load_config('cgstvg/synthetic.py:tiny')


def test_captions_name_one_shape_and_its_box():
  rng = np.random.default_rng(0)
  for n in (1, 2, 3, 4) * 10:
    objects, caption = still_grounding.captioned_scene(rng, n)
    assert len(objects) == n
    target = objects[0]
    assert caption == f"the {target['colour']} {target['shape']}"
    # no distractor has both named attributes: the caption picks exactly one shape
    assert [(o['colour'], o['shape']) for o in objects].count(
        (target['colour'], target['shape'])) == 1
    frame, box = still_grounding.render_scene(objects, np.arange(n)[::-1])  # target on top
    colour = np.all(frame == synthetic_tubes.COLOURS[target['colour']], -1)
    if target['shape'] == 'square':       # a square fills its box exactly
      ys, xs = np.nonzero(colour)
      r = target['radius']
      assert xs.min() <= target['x'] - r + 1 and xs.max() >= target['x'] + r - 2
      assert ys.min() <= target['y'] - r + 1 and ys.max() >= target['y'] + r - 2
    np.testing.assert_allclose(box * np.tile([synthetic_tubes.WIDTH, synthetic_tubes.HEIGHT], 2),
                               [target['x'], target['y'], 2 * target['radius'],
                                2 * target['radius']], rtol=1e-5)


def test_scene_batch_is_the_tube_pipeline_layout():
  config = tiny_config()
  tokenizer = RobertaTokenizer.from_folder(tokenizer_folder(config.data), config.data.max_text_len)
  batch = still_grounding.scene_batch(config, tokenizer, np.random.default_rng(1), 4, 4)
  d = config.data
  assert batch['frames'].shape == (4, 1, d.height, d.width, 3)
  assert batch['frames'].dtype == np.uint8
  assert batch['tokens'].shape == batch['text_mask'].shape == (4, d.max_text_len)
  assert batch['text_mask'].sum(1).min() >= 3          # "the <colour> <shape>"
  assert batch['boxes'].shape == (4, 1, 4)
  assert all(batch[k].all() for k in ('frame_mask', 'box_mask', 'in_span'))


def test_cell_shares_split_a_box_by_area():
  grid = (3, 4)                                    # rows, columns
  boxes = jnp.array([[0.125, 1 / 6, 0.1, 0.1],     # inside the top-left cell
                     [0.5, 0.5, 0.2, 0.1],         # across the two middle columns of row 1
                     [0.5, 0.5, 1.0, 1.0],         # the whole frame
                     [0.95, 0.05, 0.2, 0.2]])      # partly outside: only the inside counts
  shares = np.asarray(still_grounding.cell_shares(boxes, grid)).reshape(4, 3, 4)
  np.testing.assert_allclose(shares.sum((1, 2)), 1, rtol=1e-6)
  np.testing.assert_allclose(shares[0, 0, 0], 1)
  np.testing.assert_allclose(shares[1, 1, 1:3], 0.5, rtol=1e-6)
  np.testing.assert_allclose(shares[2], 1 / 12, rtol=1e-6)
  np.testing.assert_allclose(shares[3, 0, 3], 1, rtol=1e-6)


def test_training_learns_to_box_a_lone_shape():
  """One shape per scene: the losses fall, the named-cell term finds the shape's cell and the
  held-out box beats the targets' mean box."""
  config = tiny_config()
  params, history = still_grounding.train(config, 120, batch_size=8, learning_rate=1e-3,
                                          max_shapes=1, eval_every=120, cell_weight=1.0)
  first = np.mean([h['loss'] for h in history[:5]])
  last = np.mean([h['loss'] for h in history[-5:]])
  assert last < 0.8 * first, (first, last)
  cell_ce = np.mean([h['cell_ce'] for h in history[-10:]])
  assert cell_ce < 0.6 * np.log(12), cell_ce      # uniform over the 4 x 3 cells: log 12
  assert history[-1]['val_iou'] > 2 * still_grounding.mean_box_iou(config, 1), history[-1]
  assert not any(k.startswith(still_grounding.TEMPORAL_MODULES) for k in params)
  assert {'resnet', 'roberta', 'spatial_decoder', 'bbox_embed'} <= set(params)


def test_grounding_pretraining_is_cached_and_starts_the_run(tmp_path, monkeypatch):
  config = tiny_config()
  config.model.grounding_weights = 'synthetic'
  g = config.model.grounding_pretrain
  g.steps, g.batch_size, g.log_every = 2, 4, 2
  path = str(tmp_path / 'grounding.safetensors')
  monkeypatch.setattr(still_grounding, 'cache_path', lambda _: path)
  pretrained = cgstvg_task.pretrained_params(config)
  assert not any(k.startswith(still_grounding.TEMPORAL_MODULES) for k in pretrained)

  def no_training(*args, **kwargs):
    raise AssertionError('the cache was not used')
  monkeypatch.setattr(still_grounding, 'train', no_training)
  run = trainer.build_run(config)
  params = trainer.init_params(run)
  for path_, leaf in jax.tree_util.tree_leaves_with_path(pretrained):
    node = params
    for key in path_:
      node = node[key.key]
    np.testing.assert_array_equal(node, leaf)
  assert 'time_layers_0' in params              # the temporal decoder starts fresh


def test_unknown_grounding_weights_is_a_user_error():
  from jaxvg.errors import UserError
  config = tiny_config()
  config.model.grounding_weights = 'mdetr'
  with pytest.raises(UserError, match='grounding_weights'):
    cgstvg_task.pretrained_params(config)


def test_the_swin_branch_joins_after_still_pretraining(tmp_path, monkeypatch):
  """Still scenes train the model without its Video-Swin branch (no motion to see), keyed
  without the tower; the video run starts the branch's modules fresh beside the pretrained rest."""
  config = tiny_config()
  config.model.use_swin, config.model.swin_weights, config.model.swin_dims = True, '', 32
  config.model.swin_tower.update({'embed_dim': 4, 'depths': (1, 1, 1, 1), 'heads': (1, 1, 1, 1),
                                  'window': (2, 3, 3), 'patch': (1, 4, 4)})   # stride 32: tiny C5
  config.model.grounding_weights = 'synthetic'
  g = config.model.grounding_pretrain
  g.steps, g.batch_size, g.log_every = 2, 4, 2
  without = tiny_config()
  without.model.grounding_weights = 'synthetic'
  without.model.grounding_pretrain = g
  assert still_grounding.cache_path(config) == still_grounding.cache_path(without)
  path = str(tmp_path / 'grounding.safetensors')
  monkeypatch.setattr(still_grounding, 'cache_path', lambda _: path)
  pretrained = cgstvg_task.pretrained_params(config)
  assert 'input_proj2' not in pretrained and 'conf2' not in pretrained['spatial_decoder']
  params = trainer.init_params(trainer.build_run(config))
  assert 'input_proj2' in params and 'conf2' in params['spatial_decoder']
  np.testing.assert_array_equal(params['input_proj']['kernel'], pretrained['input_proj']['kernel'])
