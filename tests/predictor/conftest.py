"""Tiny synthetic R²-Tuning and SDST checkpoints trained once per session, a synthetic data cache shared with the
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
def sdst_workdir(cache_dir, tmp_path_factory) -> pathlib.Path:
  """A run directory holding the initial state of the synthetic SDST `:tiny` config, written by
  the trainer's checkpoint writer (a real SDST checkpoint without compiling a train step)."""
  import jax
  from jaxvg import data as data_lib
  from jaxvg.train import checkpoint, trainer
  config = helpers.synthetic_config('tiny', 'sdst')
  config.data.synthetic_root = str(cache_dir / 'synthetic')
  workdir = tmp_path_factory.mktemp('sdst_run')
  run = trainer.build_run(config, jax.devices()[:1])
  loader = data_lib.make_loader(config, 'train', train=True)
  state, _ = trainer.init_train_state(run, loader.batches_per_epoch)
  ckpts = checkpoint.Checkpoints(workdir, config, asynchronous=False)
  ckpts.save(state, iter(loader).get_state(), {'epoch': 0})
  ckpts.close()
  (workdir / 'config.json').write_text(config.to_json_best_effort(indent=2))
  return workdir


@pytest.fixture(scope='session')
def event_video(tmp_path_factory) -> pathlib.Path:
  from jaxvg.data import synthetic
  frames = synthetic.render(helpers.event_objects(), helpers.NUM_CLIPS)
  return helpers.write_mp4(frames, tmp_path_factory.mktemp('videos') / 'event.mp4')
