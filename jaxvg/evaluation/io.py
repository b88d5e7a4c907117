"""Reading and validating submissions: every error names the file (or row), line, qid and field.

The official scripts fail deep inside NumPy on a bad submission; here the rows are checked once,
up front, so that a training run or a user of the CLI sees what is wrong and where.
"""
from __future__ import annotations

import itertools
import json
import math
import numbers
import os
from typing import Any, Sequence

import numpy as np

from jaxvg.errors import UserError


class EvaluationInputError(UserError):
  """A submission or annotation that cannot be evaluated; the message says where and why."""


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict], list[int]]:
  """Rows of a JSON-lines file and the 1-based line number of each (blank lines are skipped)."""
  rows, line_numbers = [], []
  if not os.path.isfile(path):
    raise EvaluationInputError(f'{path}: no such file')
  with open(path, 'r', encoding='utf-8') as f:
    for line_number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as e:
        raise EvaluationInputError(
            f'{path}:{line_number}: malformed JSON line ({e.msg} at column {e.colno})') from None
      if not isinstance(row, dict):
        raise EvaluationInputError(
            f'{path}:{line_number}: expected a JSON object, got {type(row).__name__}')
      rows.append(row)
      line_numbers.append(line_number)
  return rows, line_numbers


def load_jsonl(path: str | os.PathLike) -> list[dict]:
  """Rows of a JSON-lines file; a malformed line raises EvaluationInputError naming file and line."""
  return read_jsonl(path)[0]


class Locator:
  """Names a row for error messages: `file:line` when read from a file, `source row i` otherwise."""

  def __init__(self, source: str, line_numbers: Sequence[int] | None = None):
    self.source = source
    self.line_numbers = line_numbers

  def __call__(self, index: int) -> str:
    if self.line_numbers is not None:
      return f'{self.source}:{self.line_numbers[index]}'
    return f'{self.source} row {index + 1}'


def _is_number(value: Any) -> bool:
  """A finite real number: Python or NumPy scalar, not a bool."""
  return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
          and math.isfinite(value))


def _is_sequence(value: Any) -> bool:
  return isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0


def index_by_qid(rows: Sequence[dict], where: Locator) -> dict[Any, int]:
  """qid -> row index; a missing or repeated qid is an error."""
  index = {}
  for i, row in enumerate(rows):
    if 'qid' not in row:
      raise EvaluationInputError(f'{where(i)}: row has no "qid" field')
    qid = row['qid']
    if qid in index:
      raise EvaluationInputError(
          f'{where(i)}: qid {qid!r} repeats the row at {where(index[qid])}')
    index[qid] = i
  return index


def _check_windows(row: dict, where: str) -> None:
  windows = row['pred_relevant_windows']
  qid = row['qid']
  if not _is_sequence(windows):
    raise EvaluationInputError(
        f'{where}: qid {qid!r}: "pred_relevant_windows" must be a non-empty list of '
        f'[start, end, score], got {windows!r:.80}')
  for k, window in enumerate(windows):
    if not _is_sequence(window) or len(window) < 3 or not all(map(_is_number, window[:3])):
      raise EvaluationInputError(
          f'{where}: qid {qid!r}: pred_relevant_windows[{k}] must be [start, end, score] '
          f'with finite numbers, got {window!r:.80}')
    if window[0] > window[1]:
      raise EvaluationInputError(
          f'{where}: qid {qid!r}: pred_relevant_windows[{k}] has start {window[0]} > '
          f'end {window[1]}')


def _check_saliency(row: dict, where: str) -> None:
  scores = row['pred_saliency_scores']
  if not _is_sequence(scores) or not all(map(_is_number, scores)):
    raise EvaluationInputError(
        f'{where}: qid {row["qid"]!r}: "pred_saliency_scores" must be a non-empty list of '
        f'finite numbers, got {scores!r:.80}')


def match_qids(submission: Sequence[dict], ground_truth: Sequence[dict],
               submission_where: Locator, gt_where: Locator
               ) -> tuple[dict[Any, int], dict[Any, int]]:
  """qid -> row index of both sides; raises naming the first qid that only one side has."""
  sub_index = index_by_qid(submission, submission_where)
  gt_index = index_by_qid(ground_truth, gt_where)
  for qid, i in sub_index.items():
    if qid not in gt_index:
      raise EvaluationInputError(
          f'{submission_where(i)}: qid {qid!r} is not in the ground truth {gt_where.source}')
  for qid, i in gt_index.items():
    if qid not in sub_index:
      raise EvaluationInputError(
          f'{submission_where.source}: qid {qid!r} (ground truth at {gt_where(i)}) is missing '
          f'from the submission')
  return sub_index, gt_index


def validate_submission(submission: Sequence[dict], ground_truth: Sequence[dict], *,
                        needs_windows: bool, needs_saliency: bool,
                        submission_where: Locator, gt_where: Locator) -> dict[Any, int]:
  """Checks a submission against its ground truth; returns the submission's qid -> row index.

  The qid sets must be equal (the official `match_number=True`). A field is checked on every row
  when the dataset needs it, or when the first row carries it (the official scripts decide from
  `submission[0]` which tasks to score).
  """
  if not submission:
    raise EvaluationInputError(f'{submission_where.source}: the submission is empty')
  sub_index, _ = match_qids(submission, ground_truth, submission_where, gt_where)
  check_windows = needs_windows or 'pred_relevant_windows' in submission[0]
  check_saliency = needs_saliency or 'pred_saliency_scores' in submission[0]
  for field, wanted, check in (('pred_relevant_windows', check_windows, _check_windows),
                               ('pred_saliency_scores', check_saliency, _check_saliency)):
    if wanted and not _all_valid(submission, field):
      for i, row in enumerate(submission):  # slow path: find and name the first bad row
        if field not in row:
          raise EvaluationInputError(
              f'{submission_where(i)}: qid {row["qid"]!r}: missing field "{field}"')
        check(row, submission_where(i))
  return sub_index


def _all_valid(submission: Sequence[dict], field: str) -> bool:
  """Bulk check of one field over all rows, in a few C-level passes (no per-value Python).

  True when every row holds plain JSON types and valid values; anything else (including NumPy
  values, which are fine) goes to the per-row checks.
  """
  values = [row.get(field) for row in submission]
  if set(map(type, values)) != {list} or not all(values):
    return False
  items = list(itertools.chain.from_iterable(values))
  if field == 'pred_relevant_windows':
    if not set(map(type, items)) <= {list, tuple} or min(map(len, items)) < 3:
      return False
    items = [w[:3] for w in items]
    numbers = list(itertools.chain.from_iterable(items))
  else:
    numbers = items
  if not set(map(type, numbers)) <= {int, float}:
    return False
  array = np.array(numbers, dtype=np.float64)
  if not np.isfinite(array).all():
    return False
  return field != 'pred_relevant_windows' or bool(np.all(array[0::3] <= array[1::3]))
