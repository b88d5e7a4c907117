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
  - the tube-span head refit from a fresh initialisation on the train split's outputs (batch
    4, AdamW at --lr, --steps steps, --refits initialisations), scored every quarter: what the
    head reaches on the finished model's tube with more steps than the run gave it.
A diagnosis, not a predictor: the direction words are parsed from the query text.
"""
import argparse
import functools
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from jaxvg import configs, evaluation  # noqa: E402
from jaxvg.data import pipeline, readers  # noqa: E402
from jaxvg.data.synthetic_tubes import ACTIONS  # noqa: E402
from jaxvg.errors import UserError, cli_boundary  # noqa: E402
from jaxvg.projects.cgstvg.losses import loss_weights, span_terms  # noqa: E402
from jaxvg.projects.cgstvg.model import TubeSpan  # noqa: E402
from jaxvg.projects.cgstvg.postprocess import postprocess  # noqa: E402
from jaxvg.train import mesh as mesh_lib  # noqa: E402
from jaxvg.train import step as step_lib  # noqa: E402
from jaxvg.train import trainer  # noqa: E402

SPAN_INPUTS = ('hidden', 'boxes', 'query', 'frame_mask')


def span_inputs(run: trainer.Run, params, split: str) -> dict[str, np.ndarray]:
  """The split's TubeSpan inputs (eval mode), its outputs, targets and metadata, one row per
  real sample."""
  config = run.config

  @jax.jit
  def forward(params, batch, frozen):
    if run.frozen is not None:
      batch = run.frozen.encode(frozen, batch)
    captured = {}

    def capture(next_fun, args, kwargs, context):
      if isinstance(context.module, TubeSpan) and context.method_name == '__call__':
        captured.update(zip(SPAN_INPUTS, args))
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(capture):   # the engine's eval step, in the config's dtype
      outputs = step_lib.apply_model(run.model, params, batch, train=False,
                                     dtype=step_lib.compute_dtype(config))
    return {**captured, 'tube_sted': outputs['tube_sted']}

  rows: dict[str, list] = {}
  for batch, meta in pipeline.make_loader(config, split, train=False):
    out = jax.device_get(forward(params, mesh_lib.to_global(batch, run.mesh), run.frozen_params))
    real = np.asarray(batch['sample_mask'], bool)
    direction = [query.split()[-1] if query else '' for query in meta['query']]   # '': padding
    fields = {**out, 'in_span': batch['in_span'], 'direction': direction,
              **{k: meta[k] for k in ('qid', 'frame_ids', 'width', 'height')}}
    for key, value in fields.items():
      rows.setdefault(key, []).append(np.asarray(value)[real])
  return {k: np.concatenate(v) for k, v in rows.items()}


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


def refit(config, train: dict, val: dict, ground_truth: dict, steps: int, lr: float, seed: int
          ) -> list[tuple[int, tuple[float, float]]]:
  """A fresh TubeSpan trained on the train split's inputs by the run's span terms."""
  weights = loss_weights(config)   # the run's weights of the tube span's two terms
  head = TubeSpan(config)
  inputs = lambda s, idx: tuple(jnp.asarray(s[k][idx]) for k in SPAN_INPUTS)
  params = head.init(jax.random.key(seed), *inputs(train, np.arange(2)))
  tx = optax.adamw(lr, weight_decay=config.optim.weight_decay)
  opt_state = tx.init(params)

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(params, opt_state, hidden, boxes, query, frame_mask, in_span):
    def objective(p):
      sted, actioness = head.apply(p, hidden, boxes, query, frame_mask)
      kl, bce = span_terms(sted, actioness, {'frame_mask': frame_mask, 'in_span': in_span},
                           config)
      return weights['loss_tube_sted'] * kl + weights['loss_tube_actioness'] * bce
    grads = jax.grad(objective)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  rng, scores = np.random.default_rng(seed), []
  for i in range(1, steps + 1):
    idx = rng.choice(len(train['boxes']), 4, replace=False)
    params, opt_state = step(params, opt_state, *inputs(train, idx),
                             jnp.asarray(train['in_span'][idx]))
    if i % max(1, steps // 4) == 0:
      sted, _ = head.apply(params, *inputs(val, np.arange(len(val['boxes']))))
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
  if config.data.dataset != 'synthetic_tubes' or not config.model.tube_span.enabled:
    raise UserError(f'{args.config}: the probe needs the synthetic tube benchmark and '
                    'model.tube_span')
  run = trainer.build_run(config)
  params = trainer.restore_params(run, args.workdir, 'latest')
  train, val = (span_inputs(run, params, s) for s in (config.data.train_split,
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
          refit(config, train, val, ground_truth, args.steps, args.lr, seed), flush=True)


if __name__ == '__main__':
  main()
