"""NST's table on the synthetic mixed-quality benchmark: one CG-STVG base trained on clean video
(`configs/cgstvg/synthetic.py`), then LoRA, full fine-tuning and NST on the same layers tuned
from it on mixed-quality video (`configs/nst/synthetic.py:<method>`), and every method, the
frozen base too, scored on the HQ, LQ and mixed splits of the val set.

  python benchmarks/nst_table.py [--size reduced|full] [--workdir DIR]

Every run goes through the engine (`trainer.train_and_evaluate`) and resumes from its workdir,
so an interrupted table continues where it stopped. `reduced` is sized for a shared 2-core CPU.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

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


def run(workdir: str, size_name: str = 'reduced') -> dict[str, Any]:
  """Trains what is not trained yet and scores every method; returns the table's numbers."""
  from jaxvg.train import trainer
  size = SIZES[size_name]
  started, ticks = time.perf_counter(), host.cpu_ticks()
  base_dir = os.path.join(workdir, 'base')
  base = configs.load(os.path.join(REPO, f'configs/cgstvg/synthetic.py:{size.synthetic}'))
  base.train.epochs = size.base_epochs
  trainer.train_and_evaluate(base, base_dir)
  results, base_hq = {}, None
  for method in METHODS:
    config = configs.load(os.path.join(REPO, f'configs/nst/synthetic.py:{method},{size.synthetic}'))
    config.nst.base_checkpoint = base_dir
    config.train.epochs = size.tune_epochs
    method_dir = os.path.join(workdir, method)
    if method != 'frozen':
      trainer.train_and_evaluate(config, method_dir, init_from=base_dir)
    results[method] = benchmark.evaluate(config, method_dir if method != 'frozen' else None,
                                         base_hq=base_hq)
    base_hq = base_hq or results['frozen']['splits']['hq']
  return {'size': size_name, 'methods': results,
          'seconds': time.perf_counter() - started,
          'steal_fraction': host.steal_fraction(ticks, host.cpu_ticks()),
          'load_average_1min': os.getloadavg()[0]}


def format_table(result: dict[str, Any]) -> str:
  """A Markdown table: m_vIoU and m_tIoU per split, vIoU@0.3 / @0.5 on LQ, HQ − frozen."""
  header = ('| method | HQ m_vIoU | LQ m_vIoU | mixed m_vIoU | HQ m_tIoU | LQ m_tIoU | '
            'mixed m_tIoU | LQ vIoU@0.3 | LQ vIoU@0.5 | HQ − frozen (m_vIoU) |')
  lines = [header, '|' + '---|' * 10]
  for method, row in result['methods'].items():
    s = row['splits']
    lines.append(
        f"| {NAMES[method]} | {s['hq']['m_vIoU']:.2f} | {s['lq']['m_vIoU']:.2f} | "
        f"{s['mixed']['m_vIoU']:.2f} | {s['hq']['m_tIoU']:.2f} | {s['lq']['m_tIoU']:.2f} | "
        f"{s['mixed']['m_tIoU']:.2f} | {s['lq']['vIoU@0.3']:.2f} | {s['lq']['vIoU@0.5']:.2f} | "
        f"{row['hq_minus_frozen']['m_vIoU']:+.2f} |")
  return '\n'.join(lines)
