"""CG-STVG trained to box the shape a caption names in still scenes (the measurement behind the
synthetic run's diagnosis, benchmarks/cgstvg_still_grounding.py)."""
import numpy as np

from jaxvg.data import synthetic_tubes
from jaxvg.data.tube_examples import tokenizer_folder
from jaxvg.projects.cgstvg import still_grounding
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


def test_training_learns_to_box_a_lone_shape():
  """One shape per scene: the losses fall and the held-out box beats the targets' mean box."""
  config = tiny_config()
  params, history = still_grounding.train(config, 120, batch_size=8, learning_rate=1e-3,
                                          max_shapes=1, eval_every=120)
  first = np.mean([h['loss'] for h in history[:5]])
  last = np.mean([h['loss'] for h in history[-5:]])
  assert last < 0.8 * first, (first, last)
  assert history[-1]['val_iou'] > 2 * still_grounding.mean_box_iou(config, 1), history[-1]
  assert not any(k.startswith(still_grounding.TEMPORAL_MODULES) for k in params)
  assert {'resnet', 'roberta', 'spatial_decoder', 'bbox_embed'} <= set(params)
