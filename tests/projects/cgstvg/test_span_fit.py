"""The tube span fit after training (`model.tube_span.fit_steps`, the engine's `FinalStage`): a
short run on the tiny synthetic tube benchmark ends with the head fit on the finished model's
tube, written into both the trained and the evaluated weights of the last checkpoint, val
scored before and after it; a resumed finished run does not fit again; off by default."""
import json

import jax
import numpy as np
import pytest
from flax import traverse_util

from configs.cgstvg import synthetic
from jaxvg import registry
from jaxvg.projects.cgstvg import span_fit
from jaxvg.projects.cgstvg.config import base_config
from jaxvg.train import checkpoint as checkpoint_lib
from jaxvg.train import trainer
from jaxvg.train.state import params_sha256


def config(root):
  c = synthetic.get_config('tiny')
  c.data.synthetic_root = str(root)
  c.model.tube_span.fit_steps = 6            # the default size's head, fit for 6 steps
  c.train.ema_decay = 0.9          # one step of the tiny run: the EMA is not the weights yet
  return c


def checkpoint_weights(c, workdir):
  """(step, trained params, evaluated params) of the latest checkpoint."""
  run = trainer.build_run(c)
  abstract = jax.eval_shape(lambda: trainer.init_params(run))
  ckpts = checkpoint_lib.Checkpoints(workdir, c, asynchronous=False, read_only=True)
  try:
    params, step = ckpts.restore_params(abstract, ema=False)
    ema, _ = ckpts.restore_params(abstract, ema=True)
  finally:
    ckpts.close()
  return step, jax.device_get(params), jax.device_get(ema)


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  root = tmp_path_factory.mktemp('span_fit')
  c, workdir = config(root / 'synthetic'), root / 'run'
  trainer.train_and_evaluate(c, str(workdir))
  return c, workdir


def test_the_fitted_head_is_in_both_weights_of_the_last_checkpoint(finished):
  c, workdir = finished
  step, params, ema = checkpoint_weights(c, workdir)
  # the stage's inputs come before the head, so the finished weights give them again
  run = trainer.build_run(c)
  fitted = span_fit.fit_after_training(run, ema)['tube_span']
  for tree in (params, ema):
    for path, value in traverse_util.flatten_dict(fitted).items():
      np.testing.assert_array_equal(traverse_util.flatten_dict(tree['tube_span'])[path], value)
  # the rest of the trained weights are not the evaluated ones
  rest = lambda tree: {k: v for k, v in tree.items() if k != 'tube_span'}
  assert params_sha256(rest(params)) != params_sha256(rest(ema))

  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  before = [r for r in rows if r['split'] == 'val_before_final_stage']
  after = [r for r in rows if r['split'] == 'val']
  assert [r['step'] for r in before] == [after[-1]['step']] == [step]
  assert 'm_vIoU' in before[0]


def test_a_resumed_finished_run_does_not_fit_again(finished):
  c, workdir = finished
  digest = params_sha256(checkpoint_weights(c, workdir)[2])
  log = (workdir / 'metrics.jsonl').read_text()
  trainer.train_and_evaluate(c, str(workdir))
  assert params_sha256(checkpoint_weights(c, workdir)[2]) == digest
  assert (workdir / 'metrics.jsonl').read_text() == log


def test_off_unless_asked():
  stage = registry.get_task('cgstvg').training.final_stage
  assert stage(base_config()) is None                        # no tube span officially
  assert stage(synthetic.get_config('tiny')) is None         # fit_steps 0
  c = synthetic.get_config()
  assert stage(c).name == 'tube span fit'
  c.model.tube_span.enabled = False
  assert stage(c) is None
