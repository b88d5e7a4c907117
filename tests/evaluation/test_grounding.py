"""The embedded benchmark demonstrates grounding: a trained model reads its query.

A smaller version of README's main job (the 'small' synthetic benchmark, the tiny model, the
tiny CLIP pretrained on the renderer's frames and captions), scored on val through the real
path twice: with the true queries, and with every query swapped for another video's. A model
that only learned where events tend to be scores the same on both.
"""
import importlib.util
import pathlib

import numpy as np
import pytest

from jaxvg import data as data_lib
from jaxvg.clip import pretrain
from jaxvg.evaluation import swapped
from jaxvg.train import trainer

CONFIG = pathlib.Path(__file__).resolve().parents[2] / 'configs' / 'r2tuning' / 'synthetic.py'

# A shorter pretraining than the default run's (pretrain.STEPS) keeps the test fast; it is put
# where 'synthetic:tiny' is cached, so the run loads it through the real path.
TEST_PRETRAIN_STEPS = 60
METRIC = 'MR-full-R1@0.5'
MIN_GAP = 15.0


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('grounding-cache')
  mp = pytest.MonkeyPatch()
  mp.setenv('JAXVG_CACHE', str(root))
  _, params, _ = pretrain.pretrain('tiny', steps=TEST_PRETRAIN_STEPS)
  pretrain.save_params(params, pretrain.cache_path('tiny'))
  yield root
  mp.undo()


def small_config():
  """README's run made small: the tiny model on the 'small' benchmark, pretrained tiny CLIP."""
  spec = importlib.util.spec_from_file_location('synthetic_config', CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config('tiny')
  config.data.synthetic_size = 'small'
  config.clip.path = 'synthetic:tiny'
  config.train.epochs = 4
  config.train.checkpoint_every = 1000
  return config


def test_true_queries_beat_swapped_queries(cache_dir, tmp_path):
  config = small_config()
  trainer.train_and_evaluate(config, str(tmp_path))
  run = trainer.build_run(config)
  state = trainer.restore_for_inference(run, str(tmp_path), 'latest')
  val = data_lib.make_loader(config, 'val', train=False)
  true = trainer.evaluate_split(run, state.params, val)
  blind = trainer.evaluate_split(run, state.params, data_lib.make_loader(
      config, 'val', train=False, records=swapped.swap_queries(val.records)))
  print(swapped.format_gap(true, blind, [METRIC, 'MR-full-mAP']))
  assert np.isfinite(true[METRIC]) and true[METRIC] >= blind[METRIC] + MIN_GAP
