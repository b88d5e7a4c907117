"""Every experiment config builds its model with the official parameter count and takes a step."""
import pathlib

import jax
import numpy as np
import pytest

import jaxvg_testing
from jaxvg import registry
from jaxvg.errors import UserError
from jaxvg.train import optim, step as step_lib
from jaxvg.train.state import TrainState, count_params

CONFIGS = jaxvg_testing.CONFIGS
# (config file, argument) -> official trainable parameter count (None: not an official config).
EXPECTED = {
    ('r2tuning/qvhighlights.py', None): 2_836_242,
    ('r2tuning/charades_sta.py', None): 2_836_242,
    ('r2tuning/tacos.py', None): 2_836_242,
    ('r2tuning/ego4d_nlq.py', None): 2_836_242,
    ('r2tuning/youtube_highlights.py', 'surfing'): 1_846_281,
    ('r2tuning/tvsum.py', 'VU'): 1_846_281,
    ('r2tuning/synthetic.py', 'tiny'): None,
    # CG-STVG: built, counted (200,570,645 trainable) and trained in tests/projects/cgstvg.
    ('cgstvg/hcstvg_v1.py', None): None,
    ('cgstvg/hcstvg_v2.py', None): None,
    ('cgstvg/vidstg.py', None): None,
    ('cgstvg/synthetic.py', None): None,
    # SDST: no official code or count (the QVHighlights config is 4,149,920, near the paper's
    # 4.1 M); built and stepped in tests/projects/sdst.
    ('sdst/qvhighlights.py', None): None,
    ('sdst/charades_sta.py', None): None,
    ('sdst/tacos.py', None): None,
    ('sdst/synthetic.py', 'tiny'): None,
    # NST: the frozen CG-STVG base with injected units, built and stepped in tests/projects/nst.
    ('nst/hcstvg_v1.py', None): None,
    ('nst/hcstvg_v2.py', None): None,
    ('nst/vidstg.py', None): None,
    ('nst/synthetic.py', None): None,
    # Zero-shot: never trained; its model and runner are tested in tests/projects/zeroshot.
    ('zeroshot/hcstvg_v1.py', None): None,
    ('zeroshot/hcstvg_v2.py', None): None,
    ('zeroshot/vidstg.py', None): None,
    ('zeroshot/synthetic.py', 'tiny'): None,
}
OWN_TESTS = {'cgstvg': 'tests/projects/cgstvg', 'nst': 'tests/projects/nst',
             'sdst': 'tests/projects/sdst',
             'zeroshot': 'tests/projects/zeroshot'}


def load_config(name: str, arg: str | None):
  return jaxvg_testing.load_config(name if arg is None else f'{name}:{arg}')


def test_every_config_file_is_listed():
  files = {str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob('*.py')}
  assert files == {name for name, _ in EXPECTED}


def test_unknown_domain_is_a_clear_error():
  with pytest.raises(UserError, match='domain must be one of'):
    load_config('r2tuning/tvsum.py', 'XX')


# One compiled step per distinct architecture (the MR configs differ from QVHighlights only in
# hyperparameters, the highlight configs from TVSum only in domain); the others trace the same
# step abstractly, which runs every shape and config check without compiling again.
COMPILED = {('r2tuning/qvhighlights.py', None), ('r2tuning/tvsum.py', 'VU')}


def _tiny_batch(config, task):
  batch = task.dummy_batch(config, 2)
  rng = np.random.default_rng(0)
  batch['video'] = rng.standard_normal(batch['video'].shape).astype(np.float32)
  batch['query'] = rng.standard_normal(batch['query'].shape).astype(np.float32)
  batch['windows'] = np.array([[[1.0, 4.0], [0, 0]], [[2.0, 7.5], [0, 0]]], np.float32)
  batch['window_mask'] = np.array([[True, False], [True, False]])
  batch['saliency'] = (np.arange(8)[None] % 3 == 0).astype(np.float32).repeat(2, 0)
  batch['pos_clip'] = np.array([0, 3], np.int32)
  return batch


@pytest.mark.parametrize('name,arg', list(EXPECTED))
def test_config_builds_and_takes_one_step(name, arg):
  config = load_config(name, arg)
  if config.task in OWN_TESTS:
    pytest.skip(f'{config.task} configs are built and stepped in {OWN_TESTS[config.task]}')
  config.data.t_buckets = (8,)                       # tiny inputs, the config's own widths
  config.data.l_buckets = (4,)
  config.data.max_windows = 2
  task = registry.get_task(config.task)
  model = task.build_model(config)
  batch = _tiny_batch(config, task)
  tx = optim.make_optimizer(config.optim, steps_per_epoch=10)
  schedule = optim.learning_rate_schedule(config.optim, steps_per_epoch=10)
  init = lambda: TrainState.create(
      model.init({'params': jax.random.key(0)}, batch, train=False)['params'], tx,
      jax.random.key(1))
  train_step = step_lib.make_train_step(task.training, model, config, schedule)
  if (name, arg) not in COMPILED:
    state = jax.eval_shape(init)
    new_state, metrics = jax.eval_shape(train_step, state, batch, None)
    assert metrics['loss'].shape == () and new_state.step.shape == ()
    if EXPECTED[(name, arg)] is not None:
      assert count_params(state.params) == EXPECTED[(name, arg)]
    return
  state = jax.jit(init)()
  assert count_params(state.params) == EXPECTED[(name, arg)]
  new_state, metrics = jax.jit(train_step)(state, batch, None)
  assert np.isfinite(float(metrics['loss'])) and float(metrics['grad_norm']) > 0
  assert int(new_state.step) == 1
  moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                       new_state.params, state.params)
  assert any(jax.tree.leaves(moved))


def test_a_saved_config_takes_the_fields_it_predates_from_the_task_base():
  """A run's config.json written before a field existed reads it from the task's base config;
  saved values win, saved fields the base lacks stay, and JSON lists come back as tuples."""
  import json
  from jaxvg import configs
  from jaxvg.projects.sdst.config import base
  saved = json.loads(configs.load(str(CONFIGS / 'sdst/synthetic.py') + ':tiny')
                     .to_json_best_effort())
  del saved['model']['pool_scale_init']            # a field the run predates
  saved['model']['dims'] = 48
  saved['data']['only_in_this_run'] = 'kept'
  config = configs.from_saved(saved, base())
  assert config.model.pool_scale_init == base().model.pool_scale_init
  assert config.model.dims == 48 and config.data.only_in_this_run == 'kept'
  assert config.data.t_buckets == (8, 16, 32) and isinstance(config.data.t_buckets, tuple)
  assert configs.from_saved(saved).model.get('pool_scale_init') is None   # no base: as saved
