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

import ml_collections

from jaxvg import configs
from jaxvg.bench import host
from jaxvg.projects.nst import benchmark

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METHODS = ('frozen', 'lora', 'full', 'nst')
NAMES = {'frozen': 'frozen base', 'lora': 'LoRA', 'full': 'full FT (same layers)', 'nst': 'NST'}


@dataclasses.dataclass(frozen=True)
class Size:
  synthetic: str       # jaxvg.data.synthetic_tubes.SIZES
  frames: int          # frames per clip (data.max_frames, one bucket)
  base_epochs: int
  tune_epochs: int


SIZES = {'full': Size('default', 32, 20, 4), 'reduced': Size('default', 16, 6, 2),
         'smoke': Size('tiny', 8, 1, 1)}   # the mechanics end to end, no accuracy


def _sized(config: ml_collections.ConfigDict, size: Size, frames_dir: str, epochs: int
           ) -> ml_collections.ConfigDict:
  config.data.synthetic_size = size.synthetic
  config.data.train_split, config.data.val_split = 'train', 'val'
  config.data.frames_dir = frames_dir
  config.data.max_frames = size.frames
  config.data.frame_buckets = (size.frames,)
  config.train.epochs = epochs
  return config


def run(workdir: str, size_name: str = 'reduced') -> dict[str, Any]:
  """Trains what is not trained yet and scores every method; returns the table's numbers."""
  from jaxvg.prepare.stvg_frames import ensure_synthetic_tube_frames
  from jaxvg.train import trainer
  size = SIZES[size_name]
  started, ticks = time.perf_counter(), host.cpu_ticks()
  frames_dir = ensure_synthetic_tube_frames(size=size.synthetic, short_side=64)
  base_dir = os.path.join(workdir, 'base')
  base = _sized(configs.load(os.path.join(REPO, 'configs/cgstvg/synthetic.py')), size,
                frames_dir, size.base_epochs)
  base.train.ema_decay = 0.0   # at 0.9998 the EMA of a few hundred steps is still the init
  trainer.train_and_evaluate(base, base_dir)
  results, base_hq = {}, None
  for method in METHODS:
    config = _sized(configs.load(os.path.join(REPO, f'configs/nst/synthetic.py:{method}')),
                    size, frames_dir, size.tune_epochs)
    config.nst.base_checkpoint = base_dir
    method_dir = os.path.join(workdir, method)
    if method != 'frozen':
      trainer.train_and_evaluate(config, method_dir)
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
