"""NST's table on the synthetic mixed-quality benchmark: one CG-STVG base trained on clean video
(`configs/cgstvg/synthetic.py`), then LoRA, full fine-tuning and NST on the same layers tuned
from it on mixed-quality video (`configs/nst/synthetic.py:<method>`), and every method, the
frozen base too, scored on the HQ, LQ and mixed splits of the val set.

  python benchmarks/nst_table.py [--size reduced|full|smoke] [--workdir DIR] [--json F]
  python -m jaxvg.bench --only nst [--quick] [--nst_workdir DIR]   (reduced; smoke with --quick)

Every run goes through the engine (`trainer.train_and_evaluate`) and resumes from its workdir,
so an interrupted table continues where it stopped, and a finished one is only re-scored. Each
phase (the base, each method's tuning, each method's scoring) records its wall and CPU seconds
and the steal fraction meanwhile; a phase that found its run already trained says so
(`resumed`). `reduced` is sized for a shared 2-core CPU.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable

from jaxvg import configs
from jaxvg.bench import host
from jaxvg.projects.nst import benchmark

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METHODS = ('frozen', 'lora', 'full', 'nst')
NAMES = {'frozen': 'frozen base', 'lora': 'LoRA', 'full': 'full FT (same layers)', 'nst': 'NST'}


@dataclasses.dataclass(frozen=True)
class Size:
  synthetic: str       # configs/cgstvg/synthetic.py's size (the benchmark's videos)
  base_epochs: int
  tune_epochs: int


SIZES = {'full': Size('default', 6, 4), 'reduced': Size('default', 6, 2),
         'smoke': Size('tiny', 1, 1)}   # smoke: the mechanics end to end, no accuracy


def default_workdir(size_name: str) -> str:
  """Where a size's runs live unless told: one directory per size (their models differ)."""
  return os.path.join('runs', f'nst_table-{size_name}')


def _timed(call: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
  out, sample = host.timed(call)
  return out, {'s': sample.wall_s, 'cpu_s': sample.cpu_s, 'steal_fraction': sample.steal_fraction}


def _train(config, workdir: str, init_from: str | None = None) -> dict[str, Any]:
  """Trains (or resumes, or finds finished) one engine run; returns its phase record."""
  from jaxvg.train import trainer
  resumed = os.path.isdir(os.path.join(workdir, 'checkpoints'))
  _, phase = _timed(lambda: trainer.train_and_evaluate(config, workdir, init_from=init_from))
  return {**phase, 'resumed': resumed}


def run(workdir: str, size_name: str = 'reduced') -> dict[str, Any]:
  """Trains what is not trained yet and scores every method; returns the table's numbers, each
  method's LQ gain and HQ change over the frozen base, and every phase's seconds."""
  size = SIZES[size_name]
  started, ticks = time.perf_counter(), host.cpu_ticks()
  base_dir = os.path.join(workdir, 'base')
  base = configs.load(os.path.join(REPO, f'configs/cgstvg/synthetic.py:{size.synthetic}'))
  base.train.epochs = size.base_epochs
  phases = {'base_train': _train(base, base_dir)}
  results, base_scores = {}, None
  for method in METHODS:
    config = configs.load(os.path.join(REPO, f'configs/nst/synthetic.py:{method},{size.synthetic}'))
    config.nst.base_checkpoint = base_dir
    config.train.epochs = size.tune_epochs
    method_dir = os.path.join(workdir, method)
    if method != 'frozen':
      phases[f'{method}_train'] = _train(config, method_dir, init_from=base_dir)
    trained_dir = method_dir if method != 'frozen' else None
    base_hq = base_scores['hq'] if base_scores else None
    results[method], phases[f'{method}_score'] = _timed(
        lambda: benchmark.evaluate(config, trained_dir, base_hq=base_hq))
    base_scores = base_scores or results['frozen']['splits']
    results[method]['lq_minus_frozen'] = {
        name: results[method]['splits']['lq'][name] - base_scores['lq'][name]
        for name in benchmark.METRICS}
  return {'size': size_name, 'methods': results, 'phases': phases,
          'seconds': time.perf_counter() - started,
          'steal_fraction': host.steal_fraction(ticks, host.cpu_ticks()),
          'load_average_1min': os.getloadavg()[0]}


def format_table(result: dict[str, Any]) -> str:
  """A Markdown table: m_vIoU and m_tIoU per split, vIoU@0.3 / @0.5 on LQ, and the HQ and LQ
  m_vIoU differences from the frozen base."""
  header = ('| method | HQ m_vIoU | LQ m_vIoU | mixed m_vIoU | HQ m_tIoU | LQ m_tIoU | '
            'mixed m_tIoU | LQ vIoU@0.3 | LQ vIoU@0.5 | HQ − frozen | LQ − frozen |')
  lines = [header, '|' + '---|' * 11]
  for method, row in result['methods'].items():
    s = row['splits']
    lines.append(
        f"| {NAMES[method]} | {s['hq']['m_vIoU']:.2f} | {s['lq']['m_vIoU']:.2f} | "
        f"{s['mixed']['m_vIoU']:.2f} | {s['hq']['m_tIoU']:.2f} | {s['lq']['m_tIoU']:.2f} | "
        f"{s['mixed']['m_tIoU']:.2f} | {s['lq']['vIoU@0.3']:.2f} | {s['lq']['vIoU@0.5']:.2f} | "
        f"{row['hq_minus_frozen']['m_vIoU']:+.2f} | {row['lq_minus_frozen']['m_vIoU']:+.2f} |")
  return '\n'.join(lines)


def format_phases(result: dict[str, Any]) -> str:
  """One line per phase: wall and CPU seconds, steal, and whether the run was already there."""
  return '\n'.join(
      f"{name:<14s} {p['s']:8.0f} s wall {p['cpu_s']:8.0f} s CPU  steal {p['steal_fraction']:.2f}"
      + ('  (resumed)' if p.get('resumed') else '') for name, p in result['phases'].items())
