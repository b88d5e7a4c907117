"""Annotation readers: each benchmark's file layout -> list of `GroundingRecord`.

Supported layouts:
  * QVHighlights-schema jsonl (QVHighlights, and the Lighthouse releases of Charades-STA, TACoS,
    TVSum and YouTube Highlights; Ego4D-NLQ and the R²-Tuning grounding files use it too);
  * R²-Tuning / UMT `tvsum_anno.json` ({vid: {title, anno (T, 20), ...}}) and `youtube_anno.json`
    ({vid: {match (T,), info, frames, fps, ...}}) with the official per-domain splits.

A malformed line raises `AnnotationError` naming file, line and field; with `skip_bad=True` bad
lines are skipped and counted in `ReadResult.num_skipped`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Sequence

import numpy as np

from jaxvg.data.records import AnnotationError, GroundingRecord
from jaxvg.errors import UserError
from jaxvg.data.splits import TVSUM_SPLITS, YOUTUBE_SPLITS


@dataclasses.dataclass(frozen=True)
class ReadResult:
  """Records read from one file, and how many malformed entries were skipped."""
  records: list[GroundingRecord]
  num_skipped: int = 0
  errors: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How one benchmark is read and turned into targets.

  Attributes:
    name: registry key (`config.data.dataset`).
    fps: clips per second; None = per video (YouTube "auto": #segments / duration).
    unit: evaluation rounding unit in seconds (0 = none).
    saliency_rule: see `records.SALIENCY_RULES`.
    split_files: split -> candidate annotation file names (first existing one is used).
    json_reader: reader of the R²-Tuning `.json` layout ('tvsum_anno', 'youtube_anno'; '' = none);
      `.jsonl` files are always read as the QVH schema.
    vid_suffix: appended to the vid to form the video key (TACoS videos are '<vid>-cam-002').
    query_by_vid: text features are keyed by vid, not qid (TVSum, YouTube).
    protocol: the `jaxvg.evaluation` protocol that scores it ('' = `name`); its primary metric
      (`jaxvg.evaluation.PRIMARY_METRIC`) selects the best checkpoint.
  """
  name: str
  fps: float | None
  unit: float
  saliency_rule: str
  split_files: dict[str, tuple[str, ...]]
  json_reader: str = ''
  vid_suffix: str = ''
  query_by_vid: bool = False
  protocol: str = ''

  @property
  def evaluation(self) -> str:
    return self.protocol or self.name


def _splits(pattern_lists: dict[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
  return {k: tuple(v) for k, v in pattern_lists.items()}


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (
        DatasetSpec('qvhighlights', 0.5, 2.0, 'qvh', _splits({
            s: (f'highlight_{s}_release.jsonl', f'qvhighlights_{s}.jsonl')
            for s in ('train', 'val', 'test')})),
        DatasetSpec('charades_sta', 1.0, 0.1, 'binary', _splits({
            s: (f'charades_{s}_release.jsonl', f'charades_{s}.jsonl') for s in ('train', 'test')})),
        DatasetSpec('tacos', 0.5, 0.0, 'binary', _splits({
            s: (f'tacos_{s}_release.jsonl', f'{s}.jsonl') for s in ('train', 'val', 'test')}),
                    vid_suffix='-cam-002'),
        DatasetSpec('ego4d_nlq', 0.5, 0.0, 'binary', _splits({
            s: (f'nlq_{s}.jsonl',) for s in ('train', 'val')})),
        DatasetSpec('tvsum', 0.5, 0.0, 'tvsum', _splits({
            s: (f'tvsum_{s}_release.jsonl', 'tvsum_anno.json') for s in ('train', 'val')}),
                    json_reader='tvsum_anno', query_by_vid=True),
        DatasetSpec('youtube_highlights', None, 0.0, 'youtube', _splits({
            s: (f'youtube_highlight_{s}_release.jsonl', 'youtube_anno.json')
            for s in ('train', 'val')}), json_reader='youtube_anno', query_by_vid=True),
        DatasetSpec('synthetic', 0.5, 2.0, 'qvh', _splits({
            s: (f'synthetic_{s}.jsonl',) for s in ('train', 'val')}), protocol='qvhighlights'),
    )
}


def get_spec(name: str) -> DatasetSpec:
  if name not in DATASETS:
    raise UserError(f'unknown dataset {name!r} (config.data.dataset); known: {sorted(DATASETS)}')
  return DATASETS[name]


def evaluation_protocol(config) -> tuple[str, str]:
  """(protocol, primary metric) of the config's dataset; `config.eval.primary_metric`, when
  set, overrides the protocol's selection metric."""
  from jaxvg import evaluation
  from jaxvg.data.stvg_readers import STVG_PROTOCOLS
  name = config.data.dataset
  protocol = STVG_PROTOCOLS[name] if name in STVG_PROTOCOLS else get_spec(name).evaluation
  return protocol, config.eval.get('primary_metric', '') or evaluation.PRIMARY_METRIC[protocol]


def annotation_path(spec: DatasetSpec, anno_dir: str, split: str) -> str:
  """The first existing file among the split's candidate names in `anno_dir`."""
  if split not in spec.split_files:
    raise UserError(f'{spec.name} has no split {split!r}; splits: {sorted(spec.split_files)}')
  names = spec.split_files[split]
  for name in names:
    path = os.path.join(anno_dir, name)
    if os.path.exists(path):
      return path
  raise UserError(f'no annotation file for {spec.name}/{split} in {anno_dir!r}; '
                  f'looked for {list(names)}')


def read_split(name: str, anno_dir: str, split: str, *, domain: str = '',
               skip_bad: bool = False, min_video_len: float = -1) -> ReadResult:
  """Reads one split of a registered dataset (selecting `domain` for TVSum/YouTube)."""
  spec = get_spec(name)
  path = annotation_path(spec, anno_dir, split)
  if path.endswith('.json'):
    reader = {'tvsum_anno': read_tvsum_anno, 'youtube_anno': read_youtube_anno}[spec.json_reader]
    return reader(path, split=split, domain=domain)
  result = read_jsonl(path, fps=spec.fps, saliency_rule=spec.saliency_rule,
                      vid_suffix=spec.vid_suffix, query_by_vid=spec.query_by_vid,
                      skip_bad=skip_bad, min_video_len=min_video_len)
  if domain:
    result = dataclasses.replace(
        result, records=[r for r in result.records if r.domain == domain])
  return result


# ---------------------------------------------------------------------------------------------
# Field validation helpers: each raises AnnotationError naming where and which field.


def _need(row: dict, field: str, where: str) -> Any:
  if field not in row:
    raise AnnotationError(f'{where}: missing field {field!r}')
  return row[field]


def _number(value: Any, field: str, where: str) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
    raise AnnotationError(f'{where}: field {field!r} must be a finite number, got {value!r}')
  return float(value)


def _windows(value: Any, where: str) -> np.ndarray:
  if value is None:
    return np.zeros((0, 2), np.float64)
  try:
    arr = np.asarray(value, np.float64).reshape(-1, 2) if len(value) else np.zeros((0, 2))
    if arr.shape[0] != len(value) or not np.all(np.isfinite(arr)):
      raise ValueError
  except (TypeError, ValueError):
    raise AnnotationError(
        f'{where}: field \'relevant_windows\' must be a list of [start, end] numbers, '
        f'got {value!r}') from None
  return arr


def _int_array(value: Any, field: str, where: str, ndim: int) -> np.ndarray:
  try:
    arr = np.asarray(value)
    if arr.ndim != ndim or arr.size and not np.issubdtype(arr.dtype, np.integer):
      raise ValueError
  except (TypeError, ValueError):
    raise AnnotationError(f'{where}: field {field!r} must be a {ndim}-d list of integers, '
                          f'got {str(value)[:80]}') from None
  return arr.astype(np.int32)


def _labels(value: Any, where: str) -> np.ndarray:
  try:
    arr = np.asarray(value, np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0:
      raise ValueError
  except (TypeError, ValueError):
    raise AnnotationError(f'{where}: field \'label\' must be a non-empty (T, A) list of numbers, '
                          f'got {str(value)[:80]}') from None
  return arr


def parse_row(row: Any, *, where: str, fps: float | None, saliency_rule: str,
              vid_suffix: str = '', query_by_vid: bool = False) -> GroundingRecord:
  """One QVH-schema dict -> GroundingRecord; `where` ('file:line') prefixes every error."""
  if not isinstance(row, dict):
    raise AnnotationError(f'{where}: expected a JSON object, got {type(row).__name__}')
  vid = _need(row, 'vid', where)
  if not isinstance(vid, str) or not vid:
    raise AnnotationError(f'{where}: field \'vid\' must be a non-empty string, got {vid!r}')
  qid = _need(row, 'qid', where)
  if not isinstance(qid, (int, str)) or isinstance(qid, bool):
    raise AnnotationError(f'{where}: field \'qid\' must be an int or string, got {qid!r}')
  query = _need(row, 'query', where)
  if not isinstance(query, str):
    raise AnnotationError(f'{where}: field \'query\' must be a string, got {query!r}')
  duration = _number(_need(row, 'duration', where), 'duration', where)
  if duration <= 0:
    raise AnnotationError(f'{where}: field \'duration\' must be positive, got {duration}')
  windows = _windows(row.get('relevant_windows'), where)
  domain = row.get('domain') or ''
  clip_ids = scores = labels = None
  rule = saliency_rule
  if saliency_rule == 'qvh':
    if row.get('saliency_scores') is not None:
      clip_ids = _int_array(_need(row, 'relevant_clip_ids', where), 'relevant_clip_ids', where, 1)
      scores = _int_array(row['saliency_scores'], 'saliency_scores', where, 2)
      if scores.shape[0] != clip_ids.shape[0]:
        raise AnnotationError(f'{where}: fields \'relevant_clip_ids\' ({clip_ids.shape[0]}) and '
                              f'\'saliency_scores\' ({scores.shape[0]}) differ in length')
      if np.any(clip_ids < 0):
        raise AnnotationError(f'{where}: field \'relevant_clip_ids\' has a negative id')
    else:
      rule = 'binary' if len(windows) else 'none'
  elif saliency_rule in ('tvsum', 'youtube'):
    labels = _labels(_need(row, 'label', where), where)
    if saliency_rule == 'youtube':
      match = _int_array(_need(row, 'match', where), 'match', where, 1)
      if match.shape[0] != labels.shape[0]:
        raise AnnotationError(f'{where}: fields \'match\' and \'label\' differ in length')
      labels = match[:, None].astype(np.float32)
  elif not len(windows):
    rule = 'none'
  if fps is None:  # YouTube "auto": one clip per annotated segment.
    if labels is None:
      raise AnnotationError(f'{where}: per-video fps needs the \'match\'/\'label\' field')
    fps = labels.shape[0] / duration
  if saliency_rule == 'tvsum':  # The Lighthouse TVSum files store the clip count as duration.
    duration = labels.shape[0] / fps
  return GroundingRecord(
      vid=vid, qid=qid, query=query, duration=duration, fps=float(fps),
      relevant_windows=windows, relevant_clip_ids=clip_ids, saliency_scores=scores,
      labels=labels, saliency_rule=rule, domain=str(domain),
      feature_key=vid if query_by_vid else str(qid), video_key=vid + vid_suffix, source=where)


def _collect(items, parse: Callable[[Any, str], GroundingRecord], skip_bad: bool,
             min_video_len: float = -1) -> ReadResult:
  records, errors = [], []
  for where, item in items:
    try:
      record = parse(item, where)
    except AnnotationError as e:
      if not skip_bad:
        raise
      errors.append(str(e))
      continue
    if min_video_len > 0 and record.duration < min_video_len:
      continue
    records.append(record)
  return ReadResult(records, len(errors), tuple(errors))


def _jsonl_items(path: str):
  with open(path) as f:
    for lineno, line in enumerate(f, 1):
      if line.strip():
        yield f'{path}:{lineno}', line


def read_jsonl(path: str, *, fps: float | None, saliency_rule: str = 'binary',
               vid_suffix: str = '', query_by_vid: bool = False, skip_bad: bool = False,
               min_video_len: float = -1) -> ReadResult:
  """Reads a QVH-schema jsonl file (one dict per line); see `parse_row`."""
  def parse(line, where):
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise AnnotationError(f'{where}: invalid JSON: {e}') from None
    return parse_row(row, where=where, fps=fps, saliency_rule=saliency_rule,
                     vid_suffix=vid_suffix, query_by_vid=query_by_vid)
  return _collect(_jsonl_items(path), parse, skip_bad, min_video_len)


def _select(path: str, splits: dict, label: dict, split: str, domain: str):
  """(domain, vid) pairs of the official split, in the official order."""
  split = 'train' if split == 'train' else 'val'
  domains = [domain] if domain else sorted(splits)
  for d in domains:
    if d not in splits:
      raise UserError(f'{path}: unknown domain {d!r}; domains: {sorted(splits)}')
    for vid in splits[d][split]:
      if vid in label:
        yield d, vid


def read_tvsum_anno(path: str, *, split: str, domain: str = '', fps: float = 0.5) -> ReadResult:
  """R²-Tuning/UMT `tvsum_anno.json`: query = title, labels = anno (T, 20); official splits."""
  with open(path) as f:
    label = json.load(f)
  records = []
  for d, vid in _select(path, TVSUM_SPLITS, label, split, domain):
    where = f'{path}:{vid}'
    entry = label[vid]
    anno = _labels(_need(entry, 'anno', where), where)
    title = _need(entry, 'title', where)
    records.append(GroundingRecord(
        vid=vid, qid=vid, query=str(title), duration=anno.shape[0] / fps, fps=fps,
        relevant_windows=np.zeros((0, 2)), labels=anno, saliency_rule='tvsum', domain=d,
        feature_key=vid, source=where))
  return ReadResult(records)


def read_youtube_anno(path: str, *, split: str, domain: str = '') -> ReadResult:
  """R²-Tuning/UMT `youtube_anno.json`: query = info[5], labels = match; fps per video."""
  with open(path) as f:
    label = json.load(f)
  records = []
  for d, vid in _select(path, YOUTUBE_SPLITS, label, split, domain):
    where = f'{path}:{vid}'
    entry = label[vid]
    match = _int_array(_need(entry, 'match', where), 'match', where, 1)
    duration = (_number(_need(entry, 'frames', where), 'frames', where)
                / _number(_need(entry, 'fps', where), 'fps', where))
    info = _need(entry, 'info', where)
    records.append(GroundingRecord(
        vid=vid, qid=vid, query=str(info[5]), duration=duration, fps=len(match) / duration,
        relevant_windows=np.zeros((0, 2)), labels=match[:, None].astype(np.float32),
        saliency_rule='youtube', domain=d, feature_key=vid, source=where))
  return ReadResult(records)
