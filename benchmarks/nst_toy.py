"""NST vs LoRA vs full fine-tuning vs the frozen base on a toy mixed-quality task (CPU, minutes):

  python benchmarks/nst_toy.py [--tune_steps N] [--base_steps N] [--seed S]

Prints the Markdown table of `jaxvg.projects.nst.toy.run` (see its docstring for the setup).
"""
import argparse
import dataclasses
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxvg.projects.nst import toy  # noqa: E402


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  defaults = toy.ToyConfig()
  for field in ('base_steps', 'tune_steps', 'train_size', 'test_size', 'seed'):
    parser.add_argument(f'--{field}', type=int, default=getattr(defaults, field))
  args = parser.parse_args()
  config = dataclasses.replace(defaults, **vars(args))
  result = toy.run(config, log=lambda line: print(line, file=sys.stderr))
  print(toy.format_table(result))
  print(f"\n{result['seconds']:.0f} s, config: {config}")


if __name__ == '__main__':
  main()
