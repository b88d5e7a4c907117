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
