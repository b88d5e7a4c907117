"""Two real processes on this machine (jax.distributed over localhost, CPU collectives) train,
checkpoint and evaluate through `python -m jaxvg.main --multihost`, and end where a one-process
run of the same config ends: the same parameters and the same validation metrics. CG-STVG,
whose per-layer outputs are not batch-leading, predicts the same submission rows from two
processes as from one."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import portpicker

from jaxvg.train import trainer
from jaxvg.train.state import params_sha256
from jaxvg_testing import ROOT, tiny_synthetic_config

CONFIG = str(ROOT / 'configs' / 'r2tuning' / 'synthetic.py') + ':tiny'


def _command(workdir, synthetic_root, *flags):
  return [sys.executable, '-m', 'jaxvg.main', f'--config={CONFIG}', f'--workdir={workdir}',
          f'--config.data.synthetic_root={synthetic_root}', '--config.train.epochs=1',
          '--config.mesh.data=-1', *flags]


def _env(**extra):
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  return {**env, 'JAXVG_HUGE_PAGES': '0', 'JAX_PLATFORMS': 'cpu',
          'XLA_FLAGS': '--xla_force_host_platform_device_count=1', **extra}


def test_two_processes_equal_one(tmp_path, synthetic_root):
  single, multi = tmp_path / 'single', tmp_path / 'multi'
  done = subprocess.run(_command(single, synthetic_root), cwd=ROOT, env=_env(
      XLA_FLAGS='--xla_force_host_platform_device_count=2'), capture_output=True, text=True,
      timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]

  port = portpicker.pick_unused_port()
  procs = [subprocess.Popen(_command(multi, synthetic_root, '--multihost'), cwd=ROOT, env=_env(
      JAX_COORDINATOR_ADDRESS=f'localhost:{port}', JAX_NUM_PROCESSES='2',
      JAX_PROCESS_ID=str(i)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outputs = [p.communicate(timeout=900) for p in procs]
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]

  best = lambda d: json.loads((d / 'best_metrics.json').read_text())
  assert best(multi) == best(single)
  config = tiny_synthetic_config(synthetic_root, **{'train.epochs': 1})
  digest = lambda d: params_sha256(trainer.restore_params(trainer.build_run(config), str(d),
                                                          'latest'))
  assert digest(multi) == digest(single)


# A handful of steps: compile time dominates, so compile without XLA's expensive CPU passes.
FAST_COMPILE = '--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true'


def test_two_processes_predict_cgstvg_as_one(tmp_path):
  """Each host post-processes its own samples of outputs whose batch axis is not the first
  (boxes per decoder layer): the rows of two processes equal those of one."""
  config = str(ROOT / 'configs' / 'cgstvg' / 'synthetic.py') + ':tiny'
  flags = [f'--config={config}', f'--config.data.synthetic_root={tmp_path / "synthetic"}',
           '--config.mesh.data=-1']
  fast = lambda devices: {'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices} '
                                       f'{FAST_COMPILE}'}
  trained = tmp_path / 'trained'
  done = subprocess.run([sys.executable, '-m', 'jaxvg.main', *flags, f'--workdir={trained}'],
                        cwd=ROOT, env=_env(**fast(2)), capture_output=True, text=True,
                        timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
  single, multi = tmp_path / 'single', tmp_path / 'multi'
  for workdir in (single, multi):
    shutil.copytree(trained, workdir)
  predict = lambda workdir, *extra: [sys.executable, '-m', 'jaxvg.main', *flags,
                                     f'--workdir={workdir}', '--mode=predict', *extra]
  done = subprocess.run(predict(single), cwd=ROOT, env=_env(**fast(2)), capture_output=True,
                        text=True, timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
  port = portpicker.pick_unused_port()
  procs = [subprocess.Popen(predict(multi, '--multihost'), cwd=ROOT, env=_env(
      JAX_COORDINATOR_ADDRESS=f'localhost:{port}', JAX_NUM_PROCESSES='2',
      JAX_PROCESS_ID=str(i), **fast(1)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  outputs = [p.communicate(timeout=900) for p in procs]
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  rows = lambda d: (d / 'synthetic_tubes_val_submission.jsonl').read_text().splitlines()
  assert len(rows(single)) > 1 and rows(multi) == rows(single)
