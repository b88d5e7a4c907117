"""Official metrics of every benchmark, vectorised in NumPy.

`evaluate(dataset, submission, ground_truth)` validates the rows, then runs the dataset's official
protocol; the result always holds a flat `brief` dict {metric: float} for logging and model
selection, `PRIMARY_METRIC[dataset]` naming the selection key.
"""
from __future__ import annotations

from typing import Any

from jaxvg.evaluation import protocols
from jaxvg.evaluation import stvg
from jaxvg.evaluation.io import EvaluationInputError, Locator, load_jsonl, read_jsonl, validate_submission

# dataset -> (protocol, needs windows, needs saliency)
_TEMPORAL = {
    'qvhighlights': (protocols.qvhighlights, False, False),
    'charades_sta': (protocols.moment_retrieval, True, False),
    'tacos': (protocols.moment_retrieval, True, False),
    'ego4d_nlq': (protocols.moment_retrieval, True, False),
    'activitynet': (protocols.moment_retrieval, True, False),
    'youtube_highlights': (protocols.youtube_highlights, False, True),
    'tvsum': (protocols.tvsum, False, True),
}
TEMPORAL_DATASETS = tuple(_TEMPORAL)
STVG_DATASETS = stvg.CONVENTIONS
DATASETS = TEMPORAL_DATASETS + STVG_DATASETS

PRIMARY_METRIC: dict[str, str] = {
    'qvhighlights': 'MR-full-mAP',
    'charades_sta': 'MR-full-R1@0.5',
    'tacos': 'MR-full-R1@0.5',
    'ego4d_nlq': 'MR-full-R1@0.5',
    'activitynet': 'MR-full-R1@0.5',
    'youtube_highlights': 'mAP',
    'tvsum': 'mAP',
    'hcstvg': 'm_vIoU',
    'vidstg': 'm_vIoU',
}


def evaluate(dataset: str, submission: list[dict], ground_truth: list[dict], *,
             submission_where: Locator | None = None,
             gt_where: Locator | None = None) -> dict[str, Any]:
  """Scores submission rows against the raw annotation rows with `dataset`'s official protocol.

  Args:
    dataset: one of DATASETS.
    submission: QVHighlights submission dicts {qid, pred_relevant_windows [[s, e, score], ...],
      pred_saliency_scores [...]}; for hcstvg / vidstg, tubes {qid, span, frame_ids, boxes}.
    ground_truth: the annotation rows (QVH schema; tubes for STVG). Their qids must equal the
      submission's.
    submission_where, gt_where: how errors name rows (file and line from the CLI).

  Returns:
    The official result dict; `result['brief']` is flat {metric name: float}.

  Raises:
    EvaluationInputError: a bad row, named by qid and line (or row number).
  """
  submission_where = submission_where or Locator('submission')
  gt_where = gt_where or Locator('ground truth')
  if dataset in STVG_DATASETS:
    return stvg.evaluate_tubes(submission, ground_truth, dataset, submission_where, gt_where)
  if dataset not in _TEMPORAL:
    raise ValueError(f'unknown dataset {dataset!r}; known: {DATASETS}')
  protocol, needs_windows, needs_saliency = _TEMPORAL[dataset]
  sub_index = validate_submission(submission, ground_truth, needs_windows=needs_windows,
                                  needs_saliency=needs_saliency,
                                  submission_where=submission_where, gt_where=gt_where)
  return protocol(submission, sub_index, ground_truth, gt_where)


def evaluate_files(dataset: str, submission_path: str, gt_path: str) -> dict[str, Any]:
  """`evaluate` on two JSON-lines files; errors name the file and line."""
  submission, sub_lines = read_jsonl(submission_path)
  ground_truth, gt_lines = read_jsonl(gt_path)
  return evaluate(dataset, submission, ground_truth,
                  submission_where=Locator(str(submission_path), sub_lines),
                  gt_where=Locator(str(gt_path), gt_lines))


__all__ = ['DATASETS', 'PRIMARY_METRIC', 'EvaluationInputError', 'Locator', 'evaluate',
           'evaluate_files', 'load_jsonl']
