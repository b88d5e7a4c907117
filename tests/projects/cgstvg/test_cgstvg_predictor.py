"""CG-STVG's video predictor on a rendered video (random-init weights: the plumbing, not the
accuracy): sampling as the config says, queries grounded in one padded call equal to one by one,
rows that cover the sampled range, boxes drawn on the frames, bad queries named."""
import jax
import numpy as np
import pytest

from configs.cgstvg import synthetic
from jaxvg.data import synthetic_tubes
from jaxvg.plotting_tubes import PRED_COLOUR
from jaxvg.predictor import InputError
from jaxvg.projects.cgstvg.predictor import VideoPredictor
from jaxvg.train import trainer

QUERIES = ['the red square that moves left', 'the blue circle that moves up']


@pytest.fixture(scope='module')
def predictor_and_video(tmp_path_factory):
  root = tmp_path_factory.mktemp('cgstvg_predictor')
  c = synthetic.get_config('tiny')
  c.data.synthetic_root = str(root)              # the captions' tokenizer is trained there
  c.data.update({'resolution': 48, 'max_size': 72, 'height': 48, 'width': 72, 'max_frames': 8,
                 'frame_buckets': (8,), 'sample_fps': 1.0})
  c.model.enc_layers, c.model.dec_layers, c.model.text.layers = 1, 2, 1
  run = trainer.build_run(c, devices=jax.devices()[:1])
  predictor = VideoPredictor(run, trainer.init_params(run))
  objects = [{'colour': 'red', 'shape': 'square', 'action': 'left', 'radius': 12.0, 'x': 110.0,
              'y': 60.0, 'visible': [0, 100], 'act_start': 30, 'act_end': 60},
             {'colour': 'blue', 'shape': 'circle', 'action': 'up', 'radius': 9.0, 'x': 40.0,
              'y': 90.0, 'visible': [10, 90], 'act_start': 50, 'act_end': 70}]
  path = str(root / 'shapes.mp4')
  synthetic_tubes.write_video(path, synthetic_tubes.render(objects))
  return predictor, predictor.encode_video(path)


def test_video_sampled_as_configured(predictor_and_video):
  _, video = predictor_and_video
  assert video.frames.shape == (8, 48, 64, 3) and video.fps == synthetic_tubes.FPS
  assert (video.width, video.height, video.num_frames) == (160, 120, 100)
  assert video.frame_ids[0] == 0 and np.all(np.diff(video.frame_ids) > 0)


def test_queries_together_equal_one_by_one(predictor_and_video):
  predictor, video = predictor_and_video
  together = predictor.predict(QUERIES, video)
  for qid, query in enumerate(QUERIES):
    alone = predictor.predict(query, video)
    row = together[qid]
    assert row['qid'] == qid and row['query'] == query and alone['span'] == row['span']
    np.testing.assert_allclose(alone['boxes'], row['boxes'], rtol=1e-4, atol=1e-2)
    first, last = video.frame_ids[0], video.frame_ids[-1]
    assert row['frame_ids'] == list(range(first, last + 1))
    assert first <= row['span'][0] < row['span'][1] <= last
    assert row['span_seconds'] == [row['span'][0] / 5, (row['span'][1] + 1) / 5]


def test_tube_drawn_on_frames_and_plotted(predictor_and_video, tmp_path):
  predictor, video = predictor_and_video
  rows = predictor.predict(QUERIES, video)
  drawn = predictor.draw(rows[0], video)
  inside = (video.frame_ids >= rows[0]['span'][0]) & (video.frame_ids <= rows[0]['span'][1])
  changed = np.any(drawn != video.frames, axis=(1, 2, 3))
  np.testing.assert_array_equal(changed, inside)
  assert np.all(drawn[changed] == PRED_COLOUR, axis=-1).any()
  paths = predictor.plot(rows, video, tmp_path / 'tube.png').split(', ')
  assert [p.rsplit('/', 1)[-1] for p in paths] == ['tube.png', 'tube-1.png']
  assert 'query 1' in predictor.describe(rows, video)


def test_bad_queries_are_named():
  with pytest.raises(InputError, match='empty query'):
    VideoPredictor.check_queries(['the red square', '  '])
