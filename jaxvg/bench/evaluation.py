"""Benchmark: full QVHighlights val evaluation (the official golden predictions), wall and CPU s.

  python -m jaxvg.bench.evaluation [--shared DIR]

The official `standalone_eval/eval.py` takes about 17 s wall (29 s CPU, 8-process pools) on a
2-core machine for the same files; the figure printed here includes reading both JSON-lines files.
"""
from __future__ import annotations

import argparse
import os
import pathlib

from jaxvg import evaluation
from jaxvg.bench import host

OFFICIAL_WALL_SECONDS = 17.0
OFFICIAL_CPU_SECONDS = 29.0


def run(shared_dir: str | os.PathLike, repeats: int = 3) -> dict:
  """Best-of-`repeats` wall and CPU seconds of evaluating the golden val predictions."""
  root = pathlib.Path(shared_dir) / 'data' / 'qvhighlights'
  submission = root / 'golden' / 'sample_val_preds.jsonl'
  ground_truth = root / 'highlight_val_release.jsonl'
  runs = [host.timed(lambda: evaluation.evaluate_files(
      'qvhighlights', str(submission), str(ground_truth))) for _ in range(repeats)]
  results = runs[-1][0]
  wall, cpu = min(s.wall_s for _, s in runs), min(s.cpu_s for _, s in runs)
  return {'wall_seconds': wall, 'cpu_seconds': cpu,
          'speedup_vs_official_wall': OFFICIAL_WALL_SECONDS / wall,
          'MR-full-mAP': results['brief']['MR-full-mAP']}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  default = pathlib.Path(__file__).resolve().parents[2].parent / 'shared'
  parser.add_argument('--shared', default=os.environ.get('JAXVG_SHARED', str(default)))
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  result = run(args.shared, args.repeats)
  print(f"QVHighlights val evaluation: {result['wall_seconds']:.3f} s wall, "
        f"{result['cpu_seconds']:.3f} s CPU ({result['speedup_vs_official_wall']:.0f}x faster "
        f"than the official {OFFICIAL_WALL_SECONDS:.0f} s wall); MR-full-mAP "
        f"{result['MR-full-mAP']}")


if __name__ == '__main__':
  main()
