"""The machine record of the benchmarks: CPU model, steal fraction, the shared timer."""
import json
import math
import subprocess
import sys

import pytest

from jaxvg.bench import host

STAT = 'cpu  {user} 0 {system} {idle} 0 0 0 {steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1\n'


def _write_stat(path, **ticks):
  path.write_text(STAT.format(**ticks))
  return host.cpu_ticks(path)


def test_steal_fraction_is_steal_over_all_ticks_of_the_interval(tmp_path):
  stat = tmp_path / 'stat'
  before = _write_stat(stat, user=1000, system=100, idle=500, steal=400)
  after = _write_stat(stat, user=1300, system=150, idle=550, steal=500)  # +300 +50 +50 +100
  assert host.steal_fraction(before, after) == pytest.approx(100 / 500)
  assert math.isnan(host.steal_fraction(before, before))  # no tick elapsed


def test_unknown_counters_give_nan_not_an_error(tmp_path):
  assert host.cpu_ticks(tmp_path / 'absent') is None
  (tmp_path / 'odd').write_text('intr 1 2 3\n')
  assert host.cpu_ticks(tmp_path / 'odd') is None
  assert math.isnan(host.steal_fraction(None, (0,) * 8))


def test_timer_returns_the_result_and_counts_sleep_as_wall_not_cpu():
  # A fresh interpreter: a pytest worker's process clock also counts the XLA and GC threads
  # that earlier tests left running, which is noise for this property, not the timer's error.
  probe = ('import json, time; from jaxvg.bench import host; '
           "out, s = host.timed(lambda: time.sleep(0.5) or 'done'); "
           'print(json.dumps([out, s.wall_s, s.cpu_s, s.steal_fraction]))')
  reply = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, check=True)
  out, wall_s, cpu_s, steal = json.loads(reply.stdout)
  assert out == 'done'
  assert wall_s >= 0.5 and cpu_s < 0.25
  assert math.isnan(steal) or 0 <= steal <= 1


def test_results_name_the_machine():
  assert host.cpu_model() not in ('', 'unknown')
