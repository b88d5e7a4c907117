"""Runs the benchmark suites, prints one table and writes JSON.

  python -m jaxvg.bench [--only r2tuning,sdst,cgstvg,clip,data,evaluation,zeroshot,nst]
                        [--json out.json] [--quick] [--official_step_s S] [--nst_workdir DIR]
  python -m jaxvg.bench --serve_train_steps   # one headline step per stdin line (see below)

The matmul ceiling is always measured first, in the same run, and the load average, the CPU
model and the hypervisor's steal fraction (of the run, and of each timed train step case) are
recorded: the machine is shared, and machines of one kind differ, so only ratios measured
together are comparable. For the R²-Tuning speed-up, time the official step on the same
machine (`python benchmarks/torch_reference_step.py`, needs torch) and pass it as
`--official_step_s`, or let that script alternate its steps with this engine's
(`--alternate`, which drives `--serve_train_steps` in a child process) for a ratio that the host's
drift moves alike on both sides.

The `nst` suite is NST's mixed-quality table (`jaxvg.bench.nst`, as `benchmarks/nst_table.py`):
it trains a CG-STVG base and three tuned methods (hours on a CPU at the reduced size, the smoke
size with --quick), so it runs only when named in --only. It resumes from --nst_workdir, where a
finished table is only re-scored.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import Any, Callable

from jaxvg import hugepages
from jaxvg.bench import host
from jaxvg.errors import UserError, cli_boundary

SUITES = ('r2tuning', 'sdst', 'cgstvg', 'clip', 'data', 'evaluation', 'zeroshot', 'nst')
ON_REQUEST = ('nst',)   # trains models: not in the default run


def _default_shared() -> str:
  default = pathlib.Path(__file__).resolve().parents[2].parent / 'shared'
  return os.environ.get('JAXVG_SHARED', str(default))


def _flatten(tree: dict, prefix: str = '') -> dict[str, Any]:
  rows = {}
  for key, value in tree.items():
    name = f'{prefix}{key}'
    if isinstance(value, dict):
      rows.update(_flatten(value, name + '.'))
    else:
      rows[name] = value
  return rows


def format_table(results: dict) -> str:
  """One `name  value` line per leaf of the nested results."""
  rows = _flatten(results)
  width = max(map(len, rows))
  fmt = lambda v: f'{v:12.4g}' if isinstance(v, (int, float)) else f'{v!s:>12}'  # noqa: E731
  return '\n'.join(f'{name:{width}s} {fmt(value)}' for name, value in rows.items())


@cli_boundary
def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--only', default=','.join(s for s in SUITES if s not in ON_REQUEST),
                      help=f'comma-separated subset of {",".join(SUITES)} (default: all but '
                      f'{",".join(ON_REQUEST)})')
  parser.add_argument('--json', default='', help='write the results here')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--quick', action='store_true', help='r2tuning: the headline case only; '
                      'zeroshot: the reduced case on any backend; nst: the smoke size')
  parser.add_argument('--official_step_s', type=float, default=None,
                      help='official PyTorch R²-Tuning step (batch 8) timed on this machine; '
                      'default: the shared README figure from another machine of this kind')
  parser.add_argument('--shared', default=_default_shared(), help='shared/ (evaluation suite)')
  parser.add_argument('--nst_workdir', default='',
                      help='nst: the runs of the table (default runs/nst_table-<size>)')
  parser.add_argument('--serve_train_steps', action='store_true',
                      help='no suites: run the headline train step once per stdin line, one JSON '
                      'reply per step on stdout (driven by torch_reference_step.py --alternate)')
  args = parser.parse_args(argv)
  if args.serve_train_steps:
    from jaxvg.bench import r2tuning
    r2tuning.serve_train_steps(sys.stdin, sys.stdout)
    return {}
  only = [s for s in args.only.split(',') if s]
  unknown = sorted(set(only) - set(SUITES))
  if unknown:
    raise UserError(f'--only: unknown suites {unknown}; choose from {SUITES}')

  from jaxvg.bench import ceiling
  run_ticks = host.cpu_ticks()
  results: dict[str, Any] = {'cpu': host.cpu_model(), 'cpu_count': os.cpu_count(),
                             'load_average_1min_start': os.getloadavg()[0],
                             'huge_pages': hugepages.TUNABLE in os.environ.get(
                                 'GLIBC_TUNABLES', ''),
                             'ceiling': ceiling.run()}
  gflops = results['ceiling']['matmul_gflops']
  suites: dict[str, Callable[[], dict]] = {}
  if 'r2tuning' in only:
    from jaxvg.bench import r2tuning
    suites['r2tuning'] = lambda: r2tuning.run(args.repeats, gflops, args.quick,
                                              args.official_step_s)
  if 'sdst' in only:
    from jaxvg.bench import sdst
    suites['sdst'] = lambda: sdst.run(args.repeats, gflops)
  if 'cgstvg' in only:
    from jaxvg.bench import cgstvg
    suites['cgstvg'] = lambda: cgstvg.run(args.repeats, gflops, args.quick or None)
  if 'clip' in only:
    from jaxvg.bench import clip
    suites['clip'] = lambda: clip.run(ceiling_gflops=gflops)
  if 'data' in only:
    from jaxvg.bench import data
    suites['data'] = data.run
  if 'evaluation' in only:
    from jaxvg.bench import evaluation
    suites['evaluation'] = lambda: evaluation.run(args.shared, args.repeats)
  if 'zeroshot' in only:
    from jaxvg.bench import zeroshot
    suites['zeroshot'] = lambda: zeroshot.run(args.repeats, gflops, args.quick)
  if 'nst' in only:
    from jaxvg.bench import nst
    size = 'smoke' if args.quick else 'reduced'
    suites['nst'] = lambda: nst.run(args.nst_workdir or nst.default_workdir(size), size)
  for name, suite in suites.items():
    results[name] = suite()
  results['load_average_1min_end'] = os.getloadavg()[0]
  results['steal_fraction_of_run'] = host.steal_fraction(run_ticks, host.cpu_ticks())
  print(format_table(results))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=1)
  return results


if __name__ == '__main__':
  hugepages.reexec_with_huge_pages()
  main()
