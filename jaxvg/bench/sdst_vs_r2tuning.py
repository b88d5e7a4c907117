"""SDST against R²-Tuning on the embedded synthetic benchmark: both trained on identical inputs
for the same number of epochs, val scores printed per epoch side by side.

  python -m jaxvg.bench.sdst_vs_r2tuning [--workdir runs/sdst_vs_r2tuning] [--epochs N]
      [--size default|tiny] [--only sdst,r2tuning] [--json out.json]
      [--sdst.<field>=<value> ...] [--r2tuning.<field>=<value> ...]

Each system trains from its own experiment file (configs/sdst/synthetic.py,
configs/r2tuning/synthetic.py, read at run time) through the real engine, evaluating val every
epoch. Identical inputs: SDST takes the benchmark (size, root, buckets, windows), the frozen CLIP
and the seed from R²-Tuning's config, so both read the same frames through the same CLIP; the
epoch count is R²-Tuning's unless `--epochs` sets both. A run already in `<workdir>/<system>`
resumes (or is only read back when finished), so a killed comparison continues where it stopped.

Reduced size for a shared machine: `--epochs 3` (the criterion compares equal epochs, so fewer
epochs stay a fair race), or `--size tiny` (seconds; a smoke test, too small to rank them).
`--epochs` does not move either config's `optim.decay_epochs`: for a longer race set it for both
(`--r2tuning.optim.decay_epochs='(10,)' --sdst.optim.decay_epochs='(10,)'`); at the synthetic
lr 2e-3 both systems degrade after epoch 6 until the decay (docs/sdst.md).
`--<system>.<field>=<value>` overrides one system's config, as `--config.<field>` does in
`python -m jaxvg.main` (the shared input fields through `--r2tuning.` only).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time
from typing import Any, Sequence

import ml_collections

from jaxvg.errors import UserError, cli_boundary

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = {'r2tuning': ROOT / 'configs/r2tuning/synthetic.py',
           'sdst': ROOT / 'configs/sdst/synthetic.py'}
SYSTEMS = tuple(CONFIGS)
# What makes the inputs identical: the benchmark read, the frozen CLIP it goes through, the seed.
SHARED_FIELDS = ('seed', 'data.synthetic_size', 'data.synthetic_root', 'data.t_buckets',
                 'data.l_buckets', 'data.max_windows', 'clip.arch', 'clip.path')
# Printed per epoch: metric -> column label.
METRICS = {'MR-full-mAP': 'MR-mAP', 'MR-full-R1@0.5': 'R1@0.5', 'HL-min-VeryGood-mAP': 'HL-mAP'}


def _get(config: ml_collections.ConfigDict, field: str) -> Any:
  node = config
  for name in field.split('.'):
    node = node[name]
  return node


def _set(config: ml_collections.ConfigDict, field: str, value: Any) -> None:
  *parents, leaf = field.split('.')
  node = config
  for name in parents:
    node = node[name]
  node[leaf] = value


def make_configs(size: str = 'default', epochs: int | None = None,
                 overrides: dict[str, Sequence[str]] | None = None
                 ) -> dict[str, ml_collections.ConfigDict]:
  """Both systems' configs on identical inputs and an equal epoch count.

  overrides: system -> `--config.<field>=<value>` strings. The shared input fields come from
  R²-Tuning's config, so they are set through its overrides only.
  """
  from jaxvg import configs
  from jaxvg.main import apply_overrides
  overrides = overrides or {}
  for item in overrides.get('sdst', ()):
    field = item.removeprefix('--config.').partition('=')[0]
    if field in SHARED_FIELDS:
      raise UserError(f'{item}: {field} is an input both systems share; set it with '
                      f'--r2tuning.{field}')
  loaded = {name: configs.load(f'{path}:{size}') for name, path in CONFIGS.items()}
  for name, config in loaded.items():
    apply_overrides(config, overrides.get(name, ()))
  for field in SHARED_FIELDS:
    _set(loaded['sdst'], field, _get(loaded['r2tuning'], field))
  epochs = epochs or loaded['r2tuning'].train.epochs
  for config in loaded.values():
    config.train.epochs = epochs
  return loaded


def val_history(workdir: pathlib.Path) -> list[dict[str, float]]:
  """The val metrics of each evaluated epoch, in order, from the run's metrics.jsonl."""
  path = workdir / 'metrics.jsonl'
  if not path.exists():
    return []
  rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  return [r for r in rows if r['split'] == 'val']


def train(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> dict[str, Any]:
  """Trains (or resumes) one system; returns its per-epoch val metrics and wall time."""
  from jaxvg.train import trainer
  start = time.perf_counter()
  trainer.train_and_evaluate(config, str(workdir))
  return {'wall_s': time.perf_counter() - start, 'epochs': val_history(workdir)}


def format_table(results: dict[str, dict[str, Any]], metrics: dict[str, str] = METRICS) -> str:
  """One row per epoch with each system's `metrics`, then each system's best of every metric."""
  names = list(results)
  width = 8 * len(metrics)
  lines = ['        ' + '  '.join(f'{n:<{width}s}' for n in names),
           'epoch   ' + '  '.join(f'{"".join(f"{label:>8s}" for label in metrics.values()):<{width}s}'
                                  for _ in names)]
  rows = {n: results[n]['epochs'] for n in names}
  for epoch in range(max(len(r) for r in rows.values())):
    cells = [''.join(f'{r[epoch].get(m, float("nan")):8.2f}' for m in metrics)
             if epoch < len(r) else '-' for r in rows.values()]
    lines.append(f'{epoch + 1:<8d}' + '  '.join(f'{c:<{width}s}' for c in cells))
  best = [''.join(f'{max((e.get(m, float("nan")) for e in r), default=float("nan")):8.2f}'
                  for m in metrics) for r in rows.values()]
  lines.append('best    ' + '  '.join(f'{c:<{width}s}' for c in best))
  return '\n'.join(lines)


@cli_boundary
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', default='runs/sdst_vs_r2tuning')
  parser.add_argument('--epochs', type=int, default=None,
                      help="epochs of both systems (default: R²-Tuning's config)")
  parser.add_argument('--size', default='default', help="the configs' size argument")
  parser.add_argument('--only', default=','.join(SYSTEMS), help='train only these systems')
  parser.add_argument('--json', default='', help='write the results here')
  args, rest = parser.parse_known_args(argv)
  overrides: dict[str, list[str]] = {name: [] for name in SYSTEMS}
  for item in rest:
    system, dot, field = item.lstrip('-').partition('.')
    if not item.startswith('--') or not dot or system not in SYSTEMS:
      raise UserError(f'{item}: expected --<system>.<field>=<value> with a system of {SYSTEMS}')
    overrides[system].append(f'--config.{field}')
  only = [s for s in args.only.split(',') if s]
  if set(only) - set(SYSTEMS):
    raise UserError(f'--only: unknown systems {sorted(set(only) - set(SYSTEMS))}; '
                    f'choose from {SYSTEMS}')
  configs = make_configs(args.size, args.epochs, overrides)
  root = pathlib.Path(args.workdir).resolve()   # orbax checkpoints need an absolute path
  results = {}
  for name in only:
    results[name] = train(configs[name], root / name)
    done = len(results[name]['epochs'])
    print(f'{name}: {done} epochs, {results[name]["wall_s"]:.0f} s')
    if done < configs[name].train.epochs:   # stopped early (SIGTERM): rerun to resume
      break
  print(format_table(results))
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
  return results


if __name__ == '__main__':
  main()
