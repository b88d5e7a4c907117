"""What limits a trained synthetic CG-STVG run's span, measured on its own outputs (CPU, minutes):

  python benchmarks/cgstvg_span_probe.py --workdir W [--config configs/cgstvg/synthetic.py]
      [--seed N] [--steps 3000] [--lr 3e-3] [--refits 2]

Restores the run's evaluated weights (checkpoint 'latest'; the config and seed it was trained
with), runs the model in eval mode over the train and val splits keeping what `model.TubeSpan`
reads (the final tube, the temporal hidden state, the query token), and prints, on val with the
official evaluator:
  - the run's span (the tube span) and boxes; its boxes with the GT span; the GT boxes with its
    span: which half limits;
  - how well a linear read-out of the query token (least squares, fit on train) names the
    direction word of the query: whether the query carries what the head needs;
  - the tube-span head refit from a fresh initialisation on the train split's outputs as the
    recipe's final stage fits it (`span_fit.fit`: batches of `model.tube_span.fit_batch_size`,
    AdamW at --lr, --steps steps, --refits initialisations), scored every quarter: what the
    head reaches on the finished model's tube with more steps than the run gave it.
A diagnosis, not a predictor: the direction words are parsed from the query text.
"""
import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax.numpy as jnp  # noqa: E402

from jaxvg import configs, evaluation  # noqa: E402
from jaxvg.data import pipeline, readers  # noqa: E402
from jaxvg.data.synthetic_tubes import ACTIONS  # noqa: E402
from jaxvg.errors import UserError, cli_boundary  # noqa: E402
from jaxvg.projects.cgstvg import span_fit  # noqa: E402
from jaxvg.projects.cgstvg.model import TubeSpan  # noqa: E402
from jaxvg.projects.cgstvg.postprocess import postprocess  # noqa: E402
from jaxvg.train import trainer  # noqa: E402


def split_rows(run: trainer.Run, params, split: str) -> dict[str, np.ndarray]:
  """The split's TubeSpan inputs (eval mode), its span logits and targets
  (`span_fit.span_inputs`), with the metadata and direction word of every real sample."""
  rows = span_fit.span_inputs(run, params, split)
  meta: dict[str, list] = {}
  for batch, fields in pipeline.make_loader(run.config, split, train=False):
    real = np.asarray(batch['sample_mask'], bool)
    fields = {**{k: fields[k] for k in ('qid', 'frame_ids', 'width', 'height')},
              'direction': [query.split()[-1] if query else '' for query in fields['query']]}
    for key, value in fields.items():
      meta.setdefault(key, []).append(np.asarray(value)[real])
  return {**rows, **{k: np.concatenate(v) for k, v in meta.items()}}


def score(config, split: dict, tube_sted: np.ndarray, ground_truth: dict, *, gt_span=False,
          gt_boxes=False) -> tuple[float, float]:
  """(m_tIoU, m_vIoU) of the split's rows with this span; optionally the GT span or boxes."""
  meta = {k: split[k] for k in ('qid', 'frame_ids', 'width', 'height')}
  meta['frame_mask'] = split['frame_mask']
  rows = postprocess({'tube_sted': tube_sted, 'boxes': split['boxes'][None]}, meta, config)
  for row in rows:
    truth = ground_truth[row['qid']]
    if gt_span:
      row['span'] = truth['span']
    if gt_boxes:
      boxes = dict(zip(truth['frame_ids'], truth['boxes']))
      row['boxes'] = [boxes.get(f, b) for f, b in zip(row['frame_ids'], row['boxes'])]
  protocol, _ = readers.evaluation_protocol(config)
  brief = evaluation.evaluate(protocol, rows, [ground_truth[r['qid']] for r in rows])['brief']
  return round(brief['m_tIoU'], 2), round(brief['m_vIoU'], 2)


def direction_readout(train: dict, val: dict) -> float:
  """Val accuracy of a least-squares read-out of the direction word from the query token."""
  words = list(ACTIONS)
  design = lambda s: np.c_[s['query'], np.ones(len(s['query']))]
  targets = np.eye(len(words))[[words.index(w) for w in train['direction']]]
  weights = np.linalg.lstsq(design(train), targets, rcond=None)[0]
  predicted = np.asarray(words)[(design(val) @ weights).argmax(1)]
  return float(np.mean(predicted == val['direction']))


def refit(config, train: dict, val: dict, ground_truth: dict, steps: int, seed: int
          ) -> list[tuple[int, tuple[float, float]]]:
  """A fresh TubeSpan fit on the train split's inputs as the recipe's final stage does
  (`span_fit.fit`), scored on val every quarter of `steps`."""
  head, scores = TubeSpan(config), []
  val_inputs = tuple(jnp.asarray(val[k]) for k in span_fit.SPAN_INPUTS)
  for i, variables in span_fit.fit(config, train, steps, seed):
    if i % max(1, steps // 4) == 0:
      sted, _ = head.apply(variables, *val_inputs)
      scores.append((i, score(config, val, np.asarray(sted), ground_truth)))
  return scores


@cli_boundary
def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--config', default='configs/cgstvg/synthetic.py')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--steps', type=int, default=3000)
  parser.add_argument('--lr', type=float, default=3e-3)
  parser.add_argument('--refits', type=int, default=2)
  args = parser.parse_args()
  config = configs.load(args.config)
  config.seed = args.seed
  config.model.tube_span.fit_lr = args.lr
  if config.data.dataset != 'synthetic_tubes' or not config.model.tube_span.enabled:
    raise UserError(f'{args.config}: the probe needs the synthetic tube benchmark and '
                    'model.tube_span')
  run = trainer.build_run(config)
  params = trainer.restore_params(run, args.workdir, 'latest')
  train, val = (split_rows(run, params, s) for s in (config.data.train_split,
                                                      config.data.val_split))
  ground_truth = {r.qid: r.to_json()
                  for r in pipeline.load_records(config, config.data.val_split, train=False)}
  print(f'val (m_tIoU, m_vIoU) of {len(val["qid"])} clips, trained on {len(train["qid"])}')
  print('  the run                      ', score(config, val, val['tube_sted'], ground_truth))
  print('  its boxes, the GT span       ',
        score(config, val, val['tube_sted'], ground_truth, gt_span=True))
  print('  the GT boxes, its span       ',
        score(config, val, val['tube_sted'], ground_truth, gt_boxes=True))
  print(f'direction word read linearly from the query token: {direction_readout(train, val):.2f}')
  for seed in range(args.refits):
    print(f'tube span refit (seed {seed}), (step, (m_tIoU, m_vIoU)):',
          refit(config, train, val, ground_truth, args.steps, seed), flush=True)


if __name__ == '__main__':
  main()
