"""Drop-in replacement of Moment-DETR's `standalone_eval/eval.py`, for every benchmark.

  python -m jaxvg.evaluate --submission_path preds.jsonl --gt_path gt.jsonl --save_path out.json \
      [--dataset qvhighlights] [--not_verbose]

Same arguments and (for QVHighlights) the same output file as the official script. A bad
submission is reported with its file, line and qid, and the exit code is 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from jaxvg import evaluation
from jaxvg.errors import cli_boundary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description='Moments and Highlights Evaluation Script')
  parser.add_argument('--submission_path', type=str, required=True,
                      help='path to generated prediction file')
  parser.add_argument('--gt_path', type=str, required=True, help='path to GT file')
  parser.add_argument('--save_path', type=str, help='path to save the results')
  parser.add_argument('--not_verbose', action='store_true')
  parser.add_argument('--dataset', choices=evaluation.DATASETS, default='qvhighlights',
                      help='evaluation protocol (default: the official QVHighlights one)')
  return parser.parse_args(argv)


@cli_boundary
def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  results = evaluation.evaluate_files(args.dataset, args.submission_path, args.gt_path)
  text = json.dumps(results, indent=4)
  if not args.not_verbose:
    print(text)
  if args.save_path:
    with open(args.save_path, 'w') as f:
      f.write(text)
  return 0


if __name__ == '__main__':
  sys.exit(main())
