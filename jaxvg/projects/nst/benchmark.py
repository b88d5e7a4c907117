"""The mixed-quality benchmark: a model scored on the HQ, LQ and mixed splits of the val set
(`jaxvg.projects.nst.data`), and the change on HQ against the frozen base, HQ(tuned) −
HQ(frozen), which NST is built to keep at zero."""
from __future__ import annotations

from typing import Any

import ml_collections
from etils import epath

from jaxvg.projects.nst import cgstvg
from jaxvg.projects.nst.config import unlocked_copy
from jaxvg.projects.nst.data import SPLITS

METRICS = ('m_tIoU', 'm_vIoU', 'vIoU@0.3', 'vIoU@0.5')


def split_loader(config: ml_collections.ConfigDict, split: str, **degrade: Any):
  """The val set's loader for a benchmark split; `degrade` overrides fields of
  `config.degrade` (e.g. `kinds=('motion_blur',), severities=(4,)` for one degradation)."""
  from jaxvg.data import make_loader
  config = unlocked_copy(config)
  config.degrade.update({'split': split, **degrade})
  return make_loader(config, config.data.val_split, train=False)


def score_splits(run, params: Any, splits: tuple[str, ...] = SPLITS) -> dict[str, dict]:
  """{split: the four metrics} of `params` under `run` (a `trainer.Run` of the nst task)."""
  from jaxvg.train import trainer
  scores = {}
  for split in splits:
    metrics = trainer.evaluate_split(run, params, split_loader(run.config, split))
    scores[split] = {name: metrics[name] for name in METRICS}
  return scores


def frozen_hq(config: ml_collections.ConfigDict, base: Any) -> dict[str, float]:
  """The frozen base's HQ metrics."""
  from jaxvg.train import trainer
  config = unlocked_copy(config)
  config.nst.method = 'frozen'
  run = trainer.build_run(config)
  return score_splits(run, {'base': base}, ('hq',))['hq']


def evaluate(config: ml_collections.ConfigDict, workdir: str | None,
             base_hq: dict[str, float] | None = None) -> dict[str, Any]:
  """The run's evaluated weights (the workdir's best, or the untrained model from the base
  checkpoint without one) on every split, and HQ(tuned) − HQ(frozen base) (`base_hq`, the
  frozen base's HQ metrics, when already known)."""
  from jaxvg.train import trainer
  run = trainer.build_run(config)
  trained = bool(workdir) and (epath.Path(workdir) / 'checkpoints').exists()
  params = (trainer.restore_params(run, workdir, 'best') if trained
            else trainer.load_released(run, config.nst.base_checkpoint))
  scores = score_splits(run, params)
  if config.nst.method == 'frozen':
    base_hq = scores['hq']
  elif base_hq is None:
    base_hq = frozen_hq(config, cgstvg.load_base(config.nst.base_checkpoint, config))
  return summarise(config.nst.method, scores, base_hq)


def summarise(method: str, scores: dict[str, dict], base_hq: dict[str, float]) -> dict[str, Any]:
  """A method's split scores with HQ(tuned) − HQ(frozen base), as `format_result` prints them."""
  return {'method': method, 'splits': scores,
          'hq_minus_frozen': {name: scores['hq'][name] - base_hq[name] for name in METRICS}}


def format_result(result: dict[str, Any]) -> str:
  """One line per split, then the HQ difference."""
  lines = [f"{result['method']}:"]
  for split, metrics in result['splits'].items():
    lines.append(f'  {split:<6}' + '  '.join(f'{k} {v:6.2f}' for k, v in metrics.items()))
  lines.append('  HQ(tuned) - HQ(frozen): '
               + '  '.join(f'{k} {v:+.2f}' for k, v in result['hq_minus_frozen'].items()))
  return '\n'.join(lines)
