"""The engine end to end on the tiny synthetic config: sharding, exact resume, SIGTERM, NaN guard.

These run real `python -m jaxvg.main` processes, as a user would, and compare parameter digests.
"""
import pathlib
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxvg.train import checkpoint as checkpoint_lib
from jaxvg.train import trainer
from jaxvg.train.state import params_sha256
from jaxvg_testing import tiny_synthetic_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / 'configs' / 'r2tuning' / 'synthetic.py') + ':tiny'


def tiny_config(synthetic_root: str, **overrides):
  return tiny_synthetic_config(synthetic_root, **overrides)


def main_command(workdir, synthetic_root, *flags):
  return [sys.executable, '-m', 'jaxvg.main', f'--config={CONFIG}', f'--workdir={workdir}',
          f'--config.data.synthetic_root={synthetic_root}', '--config.train.epochs=3',
          '--config.train.checkpoint_every=1', *flags]


def checkpoint_digest(config, workdir) -> tuple[int, str]:
  ckpts = checkpoint_lib.Checkpoints(workdir, config, asynchronous=False, read_only=True)
  step = ckpts.latest_step()
  ckpts.close()
  return step, params_sha256(trainer.restore_params(trainer.build_run(config), workdir, 'latest'))


def finished_steps(workdir) -> list[int]:
  latest = pathlib.Path(workdir) / 'checkpoints' / 'latest'
  return sorted(int(p.name) for p in latest.glob('*') if p.name.isdigit()) if latest.exists() \
      else []


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory, synthetic_root):
  workdir = tmp_path_factory.mktemp('uninterrupted')
  subprocess.run(main_command(workdir, synthetic_root), check=True, cwd=ROOT,
                 capture_output=True, timeout=900)
  config = tiny_config(synthetic_root, **{'train.epochs': 3})
  return checkpoint_digest(config, workdir)


def _start_and_wait_for_checkpoint(workdir, synthetic_root):
  proc = subprocess.Popen(main_command(workdir, synthetic_root), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 600
  while not finished_steps(workdir):
    assert proc.poll() is None, proc.stdout.read()[-3000:]
    assert time.time() < deadline, 'no checkpoint within 10 minutes'
    time.sleep(0.05)
  return proc


def test_sigterm_then_sigkill_then_resume_is_bitwise_identical(tmp_path, synthetic_root,
                                                                uninterrupted):
  """Preempted (SIGTERM: save and clean exit), resumed, killed outright (SIGKILL), resumed again:
  the final parameters equal the uninterrupted run's bit for bit."""
  proc = _start_and_wait_for_checkpoint(tmp_path, synthetic_root)
  proc.send_signal(signal.SIGTERM)
  output, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, output[-3000:]
  saved = int(output.split('SIGTERM: saved step ')[1].split(';')[0])
  assert finished_steps(tmp_path)[-1] == saved < uninterrupted[0]

  proc = subprocess.Popen(main_command(tmp_path, synthetic_root), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 600
  while finished_steps(tmp_path)[-1] == saved:
    assert proc.poll() is None and time.time() < deadline, proc.stdout.read()[-3000:]
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  output, _ = proc.communicate()
  assert proc.returncode == -signal.SIGKILL
  assert f'resumed from step {saved}' in output
  killed_at = finished_steps(tmp_path)[-1]
  assert saved < killed_at < uninterrupted[0], 'the run finished before it could be killed'

  resumed = subprocess.run(main_command(tmp_path, synthetic_root), cwd=ROOT, text=True,
                           capture_output=True, timeout=900)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f'resumed from step {killed_at}' in resumed.stdout
  config = tiny_config(synthetic_root, **{'train.epochs': 3})
  assert checkpoint_digest(config, tmp_path) == uninterrupted


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, synthetic_root):
  # An absurd learning rate blows the parameters up: the loss turns non-finite within a few steps.
  config = tiny_config(synthetic_root, **{'optim.lr': 1e30, 'optim.warmup_steps': 0,
                                          'train.checkpoint_every': 1, 'train.log_every': 100})
  with pytest.raises(trainer.NonFiniteLossError, match=r'non-finite loss at step (\d+)') as err:
    trainer.train_and_evaluate(config, str(tmp_path))
  bad_step = int(re.search(r'at step (\d+)', str(err.value)).group(1))
  saved = finished_steps(tmp_path)
  assert saved and saved[-1] <= bad_step          # nothing after the bad step was written
  params = trainer.restore_params(trainer.build_run(config), str(tmp_path), 'latest')
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params))


def test_sharded_step_equals_single_device_step(synthetic_root):
  """Loss and gradients of one step agree on 1 device and on a (data 4, model 2) mesh.

  The step runs with plain SGD (lr 1): the parameter change is then exactly the gradient, which
  Adam's normalisation would hide by magnifying round-off in near-zero gradients.
  """
  import optax
  from jaxvg.data import make_loader
  from jaxvg.train import mesh as mesh_lib, optim, step as step_lib
  config = tiny_config(synthetic_root)
  loader = make_loader(config, 'train', train=True)
  batch = loader.batch(0)[0]
  sgd = optax.sgd(1.0)
  results = []
  for devices, mesh_shape in ((jax.devices()[:1], (1, 1)), (jax.devices(), (4, 2))):
    config.mesh.data, config.mesh.model = mesh_shape
    run = trainer.build_run(config, devices=devices)
    schedule = optim.learning_rate_schedule(config.optim, loader.batches_per_epoch)
    state, _ = trainer.init_train_state(run, loader.batches_per_epoch)
    state = state.replace(tx=sgd, opt_state=sgd.init(state.params))
    train_step = step_lib.jit_train_step(
        step_lib.make_train_step(run.task.training, run.model, config, schedule,
                                 run.frozen.encode),
        run.mesh, mesh_lib.param_shardings(run.mesh, state),
        trainer.frozen_lib.shardings(run.frozen, run.mesh))
    before = jax.device_get(state.params)
    state, metrics = train_step(state, mesh_lib.to_global(batch, run.mesh), run.frozen_params)
    grads = jax.tree.map(lambda a, b: a - b, before, jax.device_get(state.params))
    results.append((grads, jax.device_get(metrics)))
  (grads_1, metrics_1), (grads_8, metrics_8) = results
  assert metrics_1['grad_norm'] > 0
  for key in metrics_1:
    np.testing.assert_allclose(metrics_8[key], metrics_1[key], rtol=2e-5, err_msg=key)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-7),
               grads_8, grads_1)
