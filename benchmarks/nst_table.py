"""NST's table on the synthetic mixed-quality benchmark (`jaxvg.bench.nst`): frozen base / LoRA /
full fine-tuning / NST x HQ / LQ / mixed, from one trained CG-STVG base, in one command.

  python benchmarks/nst_table.py [--size reduced|full|smoke] [--workdir runs/nst_table] [--json out]

Prints the Markdown table (the one in docs/nst.md) and, with --json, writes every number.
"""
import argparse
import json

from jaxvg.bench import nst


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--size', default='reduced', choices=sorted(nst.SIZES))
  parser.add_argument('--workdir', default='runs/nst_table')
  parser.add_argument('--json', default='')
  args = parser.parse_args()
  result = nst.run(args.workdir, args.size)
  print(nst.format_table(result))
  print(f"{result['seconds']:.0f} s, steal {result['steal_fraction']:.2f}, "
        f"load {result['load_average_1min']:.1f}")
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(result, f, indent=1)


if __name__ == '__main__':
  main()
