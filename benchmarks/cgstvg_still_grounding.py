"""How fast the synthetic CG-STVG learns to box the shape a caption names in still scenes
(`jaxvg.projects.cgstvg.still_grounding`; CPU, minutes):

  python benchmarks/cgstvg_still_grounding.py [--steps 1000] [--max_shapes 4] [--lr 3e-4]
      [--curriculum_steps 0] [--batch_size 32] [--config configs/cgstvg/synthetic.py]

The config's model (with its pretrained toy ResNet when `model.resnet_weights` is 'synthetic')
on captioned still scenes; prints the held-out IoU every `--eval_every` steps and, at the end,
that of the mean box of the held-out targets (what a model that cannot choose reaches).
"""
import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxvg import configs  # noqa: E402
from jaxvg.errors import cli_boundary  # noqa: E402
from jaxvg.projects.cgstvg import still_grounding, synthetic_backbone  # noqa: E402


@cli_boundary
def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default='configs/cgstvg/synthetic.py')
  parser.add_argument('--steps', type=int, default=1000)
  parser.add_argument('--max_shapes', type=int, default=4, choices=(1, 2, 3, 4))
  parser.add_argument('--lr', type=float, default=3e-4)
  parser.add_argument('--curriculum_steps', type=int, default=0)
  parser.add_argument('--batch_size', type=int, default=32)
  parser.add_argument('--eval_every', type=int, default=50)
  parser.add_argument('--cell_weight', type=float, default=0.0)
  parser.add_argument('--cosine_decay', action='store_true')
  args = parser.parse_args()
  config = configs.load(args.config)
  resnet = (synthetic_backbone.ensure_pretrained(config)
            if config.model.get('resnet_weights', '') == 'synthetic' else None)
  start = time.perf_counter()
  _, history = still_grounding.train(
      config, args.steps, batch_size=args.batch_size, learning_rate=args.lr,
      max_shapes=args.max_shapes, curriculum_steps=args.curriculum_steps, resnet=resnet,
      cell_weight=args.cell_weight, cosine_decay=args.cosine_decay,
      eval_every=args.eval_every, log=print)
  print(f'{time.perf_counter() - start:.0f} s; held-out IoU of the mean target box: '
        f'{still_grounding.mean_box_iou(config, args.max_shapes):.3f}; '
        f"best held-out IoU {max(h.get('val_iou', 0) for h in history):.3f}")


if __name__ == '__main__':
  main()
