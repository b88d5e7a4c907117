"""True vs swapped-query validation scores of a trained run (does the model read its query?).

  python benchmarks/swapped_queries.py --config configs/r2tuning/synthetic.py \
      --workdir runs/synthetic [--checkpoint latest|best]

Restores the checkpoint and scores the val split twice through the real path (loader, jitted
eval step, post-processing, official evaluator): once as is, once with every query replaced by
another video's (`jaxvg.evaluation.swapped`). Prints both and the gap; writes
`<workdir>/swapped_queries.json`.
"""
from __future__ import annotations

import json
import pathlib
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the configs import jaxvg
_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory.', required=True)
_CHECKPOINT = flags.DEFINE_enum('checkpoint', 'latest', ['latest', 'best'], 'Which checkpoint.')
METRICS = ('MR-full-R1@0.5', 'MR-full-R1@0.7', 'MR-full-mAP', 'HD-min-VeryGood-mAP')


def main(argv):
  del argv
  from jaxvg import data as data_lib
  from jaxvg.evaluation import swapped
  from jaxvg.train import trainer
  config = _CONFIG.value
  run = trainer.build_run(config)
  state = trainer.restore_for_inference(run, _WORKDIR.value, _CHECKPOINT.value)
  split = config.data.val_split
  loader = data_lib.make_loader(config, split, train=False)
  true = trainer.evaluate_split(run, state.params, loader)
  blind = trainer.evaluate_split(run, state.params, data_lib.make_loader(
      config, split, train=False, records=swapped.swap_queries(loader.records)))
  names = [m for m in METRICS if m in true]
  print(swapped.format_gap(true, blind, names))
  out = pathlib.Path(_WORKDIR.value) / 'swapped_queries.json'
  out.write_text(json.dumps({'true': true, 'swapped': blind}, indent=2, sort_keys=True))


if __name__ == '__main__':
  flags.mark_flag_as_required('config')
  app.run(main)
