"""NST's table on the synthetic mixed-quality benchmark (`jaxvg.bench.nst`): frozen base / LoRA /
full fine-tuning / NST x HQ / LQ / mixed, from one trained CG-STVG base, in one command.

  python benchmarks/nst_table.py [--size reduced|full|smoke] [--workdir DIR] [--json out]

Prints the Markdown table (the one in docs/nst.md) and each phase's seconds and, with --json,
writes every number. The workdir defaults to runs/nst_table-<size>; `python -m jaxvg.bench
--only nst` runs the same table inside the benchmark suites.
"""
import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxvg.bench import nst  # noqa: E402


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--size', default='reduced', choices=sorted(nst.SIZES))
  parser.add_argument('--workdir', default='', help='default runs/nst_table-<size>')
  parser.add_argument('--json', default='')
  args = parser.parse_args()
  result = nst.run(args.workdir or nst.default_workdir(args.size), args.size)
  print(nst.format_table(result))
  print(nst.format_phases(result))
  print(f"{result['seconds']:.0f} s, steal {result['steal_fraction']:.2f}, "
        f"load {result['load_average_1min']:.1f}")
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(result, f, indent=1)


if __name__ == '__main__':
  main()
