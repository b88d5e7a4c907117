"""A tiny synthetic checkpoint trained once per session, a synthetic data cache shared with the
notebook's kernel (generated once), and an mp4 rendered from the synthetic benchmark's shapes."""
import os
import pathlib

import pytest

import predictor_helpers as helpers


def pytest_configure(config):
  config.addinivalue_line('markers', 'notebook: runs notebooks/ end to end with nbclient')


@pytest.fixture(scope='session')
def cache_dir(tmp_path_factory) -> pathlib.Path:
  path = tmp_path_factory.mktemp('jaxvg_cache')
  os.environ['JAXVG_CACHE'] = str(path)
  return path


@pytest.fixture(scope='session')
def trained_workdir(cache_dir, tmp_path_factory) -> pathlib.Path:
  """Workdir of the synthetic `:tiny` config (2 epochs, 6 steps), trained once."""
  from jaxvg.train import trainer
  config = helpers.synthetic_config('tiny')
  config.data.synthetic_root = str(cache_dir / 'synthetic')
  workdir = tmp_path_factory.mktemp('run')
  trainer.train_and_evaluate(config, str(workdir))
  return workdir


@pytest.fixture(scope='session')
def event_video(tmp_path_factory) -> pathlib.Path:
  from jaxvg.data import synthetic
  frames = synthetic.render(helpers.event_objects(), helpers.NUM_CLIPS)
  return helpers.write_mp4(frames, tmp_path_factory.mktemp('videos') / 'event.mp4')
