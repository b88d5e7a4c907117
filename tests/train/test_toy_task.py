"""The seam: a second, deliberately different task (tests/toytask) trains and predicts through
the engine's own pieces with no edit to `jaxvg/train`."""
import dataclasses

import jax
import ml_collections
import numpy as np
import pytest

from jaxvg.data import make_loader
from jaxvg.train import checkpoint as checkpoint_lib, mesh as mesh_lib, optim, step as step_lib
from jaxvg.train import trainer
from toytask import task as toy


def test_toy_task_trains_with_groups_ema_and_predicts_boxes():
  config = toy.get_config()
  train_records, val_records = toy.records(64, seed=0), toy.records(16, seed=1)
  loader = make_loader(config, 'train', train=True, records=train_records)
  run = trainer.build_run(config)
  state, shardings = trainer.init_train_state(run, loader.batches_per_epoch)
  schedule = optim.learning_rate_schedule(config.optim, loader.batches_per_epoch)
  step = step_lib.jit_train_step(
      step_lib.make_train_step(run.task.training, run.model, config, schedule,
                               run.frozen.encode),
      run.mesh, shardings, trainer.frozen_lib.shardings(run.frozen, run.mesh))
  initial = jax.device_get(state.params)
  val = make_loader(config, 'val', train=False, records=val_records)

  def val_error(params):
    rows = trainer.predict_rows(run, params, val)
    truth = {r.qid: r for r in val_records}
    errors = []
    for row in rows:
      x0, y0, x1, y1 = np.asarray(truth[row['qid']].box) / toy.SIZE
      errors.append(np.abs(np.asarray(row['box']) - [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0,
                                                     y1 - y0]).mean())
    assert len(rows) == len(val_records)
    return float(np.mean(errors))

  before = val_error(state.eval_params)
  for batch, _ in loader:
    state, metrics = step(state, mesh_lib.to_global(batch, run.mesh), run.frozen_params)
  after = val_error(state.eval_params)
  assert after < 0.6 * before, (before, after)
  params = jax.device_get(state.params)
  np.testing.assert_array_equal(params['frozen_bias'], initial['frozen_bias'])   # frozen group
  assert not np.allclose(params['head']['kernel'], initial['head']['kernel'])
  ema = jax.device_get(state.ema_params)
  assert not np.allclose(ema['head']['kernel'], params['head']['kernel'])   # an EMA, not a copy


def test_restoring_a_checkpoint_never_asks_for_the_pretrained_subtree(tmp_path):
  """Evaluating or predicting reads the checkpoint: the task's pretrained subtree (which may
  build a cache, or need files a user no longer has) is asked for only where parameters start
  fresh."""
  config = toy.get_config()
  config.data.dataset = 'synthetic_tubes'   # the checkpoints' selection metric needs a protocol
  config.eval = ml_collections.ConfigDict()
  config.train.keep_checkpoints = 1
  run = trainer.build_run(config)
  state, _ = trainer.init_train_state(run, steps_per_epoch=4)
  ckpts = checkpoint_lib.Checkpoints(tmp_path, config, asynchronous=False)
  ckpts.save(state, {}, {'epoch': 0})
  ckpts.close()

  def refuse(config):
    raise AssertionError('the pretrained subtree was asked for')

  refusing = dataclasses.replace(run, task=dataclasses.replace(run.task,
                                                              pretrained_params=refuse))
  with pytest.raises(AssertionError, match='pretrained subtree'):
    trainer.init_params(refusing)            # fresh parameters do ask
  params = trainer.restore_params(refusing, str(tmp_path), 'latest')
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(params),
               jax.device_get(state.eval_params))
