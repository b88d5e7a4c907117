"""The benchmark driver: table formatting, suite selection, and the R²-Tuning benchmark batch."""
import numpy as np
import pytest

from jaxvg.bench import __main__ as bench_main
from jaxvg.bench import r2tuning


def test_table_has_one_dotted_row_per_leaf():
  table = bench_main.format_table({'ceiling': {'matmul_gflops': 50.0},
                                   'r2tuning': {'train': {'step_s': 2.5, 'n': 3}}, 'x': 'a'})
  rows = [line.split() for line in table.splitlines()]
  assert rows == [['ceiling.matmul_gflops', '50'], ['r2tuning.train.step_s', '2.5'],
                  ['r2tuning.train.n', '3'], ['x', 'a']]


def test_unknown_suite_is_rejected_before_anything_runs(capsys):
  with pytest.raises(SystemExit):
    bench_main.main(['--only', 'r2tuning,nope'])
  assert "unknown suites ['nope']" in capsys.readouterr().err


def test_benchmark_batch_has_qvh_shapes_and_masks():
  config = r2tuning.qvh_config(2)
  batch = r2tuning.make_batch(config, 2, 96, valid_clips=75)
  assert batch['video'].shape == (2, 96, 4, 50, 768)
  assert batch['query'].shape == (2, 32, 4, 512)
  assert batch['video_mask'].sum(1).tolist() == [75, 75]
  assert batch['query_mask'].sum(1).tolist() == [20, 20]
  assert np.all(batch['saliency'][:, 75:] == 0)
  assert batch['video'].dtype == np.float16 and batch['query'].dtype == np.float16
  assert config.model.dropout == 0.5 and config.model.scan_unroll == 0


def _fake_case(batch_size, num_clips, repeats=3, precision='fp32', scan_unroll=0):
  return {'step_s': 2.0 * batch_size / 8, 'xla_gflop': 100.0 * batch_size / 8}


def test_speedup_is_against_the_official_step_timed_here(monkeypatch):
  monkeypatch.setattr(r2tuning, 'train_step_case', _fake_case)
  timed = r2tuning.run(ceiling_gflops=100.0, quick=True, official_step_s=6.0)
  assert timed['official_step_timed_here'] and timed['official_step_s'] == 6.0
  assert timed['train_b8_t75']['speedup_vs_official'] == pytest.approx(3.0)
  assert timed['train_b8_t75']['fraction_of_ceiling'] == pytest.approx(0.5)
  shared = r2tuning.run(ceiling_gflops=100.0, quick=True)
  assert not shared['official_step_timed_here']
  assert shared['train_b8_t75']['speedup_vs_official'] == pytest.approx(
      r2tuning.OFFICIAL_STEP_S / 2.0)


def test_step_server_replies_once_per_request_until_quit(monkeypatch):
  import io
  import json

  from jaxvg.bench import SERVE_PREFIX
  steps = []
  monkeypatch.setattr(r2tuning, 'compiled_train_step', lambda batch_size, num_clips: (
      lambda: steps.append((batch_size, num_clips)), {'compile_s': 1.5}))
  replies = io.StringIO()
  r2tuning.serve_train_steps(io.StringIO('step\nstep\nquit\nstep\n'), replies)
  lines = replies.getvalue().splitlines()
  assert all(line.startswith(SERVE_PREFIX) for line in lines)
  records = [json.loads(line[len(SERVE_PREFIX):]) for line in lines]
  assert records[0] == {'compile_s': 1.5}
  assert len(records) == 3 and all(set(r) == {'step_s', 'cpu_s', 'steal_fraction'} for r in records[1:])
  assert steps == [(8, r2tuning.CLIPS)] * 3  # warm-up + two requests; nothing after 'quit'


def test_nst_suite_runs_only_on_request_at_the_size_asked(monkeypatch, tmp_path):
  from jaxvg.bench import ceiling, nst
  calls = []
  monkeypatch.setattr(ceiling, 'run', lambda: {'matmul_gflops': 1.0})
  monkeypatch.setattr(nst, 'run', lambda workdir, size: calls.append((workdir, size)) or {})
  for suite in bench_main.SUITES:
    if suite not in bench_main.ON_REQUEST:
      monkeypatch.setattr(f'jaxvg.bench.{suite}.run', lambda *a, **k: {}, raising=False)
  bench_main.main([])
  assert calls == []                                       # the default run trains nothing
  bench_main.main(['--only', 'nst', '--quick', '--nst_workdir', str(tmp_path)])
  bench_main.main(['--only', 'nst'])
  assert calls == [(str(tmp_path), 'smoke'), (nst.default_workdir('reduced'), 'reduced')]
