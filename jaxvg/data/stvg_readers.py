"""STVG annotation readers: HC-STVG v1/v2, VidSTG (+ VidOR trajectories) -> `TubeRecord`s, and the
LLaVA_Next_STVG proposal files -> `CandidateTubes`.

Conventions of the real files, all converted to 0-based half-open raw
frames in the records:
  HC-STVG  `st_frame` is 1-based; the GT frames are st_frame .. st_frame + len(bbox) - 1 (one box
           per raw frame); boxes are [x, y, w, h] with negative w/h in some v2 entries (corners
           sorted, then clipped). v1 has `caption`, `width`, `height`; v2 `English`,
           `img_size` = [h, w(, c)]. Evaluated with inclusive frame ranges.
  VidSTG   `temporal_gt` is half-open [begin_fid, end_fid), `used_segment` inclusive; 0-based raw
           frames. Boxes come from the VidOR trajectory file of the video (xyxy pixels). One
           record per caption (declarative) and per question (interrogative).
A malformed entry raises `AnnotationError('<file>:<entry>: field ...')`; with `skip_bad=True` it
is skipped and counted.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from jaxvg.data.readers import _need, _number
from jaxvg.data.records import AnnotationError
from jaxvg.errors import UserError
from jaxvg.data.tubes import TubeRecord, sanitize_boxes, xywh_to_xyxy

HCSTVG_CLIP_SECONDS = 20.0  # Every HC-STVG clip is 20 s long (img_num = fps x 20) [data].
SENTENCE_FIELDS = (('captions', 'declarative'), ('questions', 'interrogative'))


@dataclasses.dataclass(frozen=True)
class TubeReadResult:
  """Records read from one file, and the malformed entries skipped."""
  records: list[TubeRecord]
  num_skipped: int = 0
  errors: tuple[str, ...] = ()


def _collect(items: Iterable[tuple[str, Any]], parse: Callable[[Any, str], list[TubeRecord]],
             skip_bad: bool) -> TubeReadResult:
  records, errors = [], []
  for where, entry in items:
    try:
      records.extend(parse(entry, where))
    except AnnotationError as e:
      if not skip_bad:
        raise
      errors.append(str(e))
  return TubeReadResult(records, len(errors), tuple(errors))


def _load_json(path: str, kind: type) -> Any:
  try:
    with open(path) as f:
      data = json.load(f)
  except json.JSONDecodeError as e:
    raise AnnotationError(f'{path}: invalid JSON: {e}') from None
  if not isinstance(data, kind):
    raise AnnotationError(f'{path}: expected a JSON {kind.__name__}, got {type(data).__name__}')
  return data


def _int(value: Any, field: str, where: str, minimum: int = 0) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise AnnotationError(f'{where}: field {field!r} must be an integer >= {minimum}, '
                          f'got {value!r}')
  return value


def _text(value: Any, field: str, where: str) -> str:
  if not isinstance(value, str) or not value.strip():
    raise AnnotationError(f'{where}: field {field!r} must be a non-empty string, got {value!r}')
  return value


def _box_array(value: Any, field: str, where: str) -> np.ndarray:
  try:
    arr = np.asarray(value, np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4 or not arr.shape[0] or not np.all(np.isfinite(arr)):
      raise ValueError
  except (TypeError, ValueError):
    raise AnnotationError(f'{where}: field {field!r} must be a non-empty list of 4-number boxes, '
                          f'got {str(value)[:80]}') from None
  return arr


# ---------------------------------------------------------------------------------------------
# HC-STVG.


def parse_hcstvg_entry(vid: str, entry: Any, where: str, *,
                       one_based_st_frame: bool = True) -> TubeRecord:
  """One `{vid: entry}` item of an HC-STVG v1 or v2 file (v2 recognised by `img_size`).

  `one_based_st_frame=False` reads `st_frame` as 0-based, as LLaVA_Next_STVG does (its `- 1` is
  commented out), one frame later than the README and CG-STVG.
  """
  if not isinstance(entry, dict):
    raise AnnotationError(f'{where}: expected a JSON object, got {type(entry).__name__}')
  if 'img_size' in entry:
    size = _need(entry, 'img_size', where)
    if not isinstance(size, list) or len(size) not in (2, 3):
      raise AnnotationError(f"{where}: field 'img_size' must be [h, w(, c)], got {size!r}")
    height, width = (_int(v, 'img_size', where, 1) for v in size[:2])
    query = _text(_need(entry, 'English', where), 'English', where)
  else:
    width = _int(_need(entry, 'width', where), 'width', where, 1)
    height = _int(_need(entry, 'height', where), 'height', where, 1)
    query = _text(_need(entry, 'caption', where), 'caption', where)
  num_frames = _int(_need(entry, 'img_num', where), 'img_num', where, 1)
  st_frame = _int(_need(entry, 'st_frame', where), 'st_frame', where, int(one_based_st_frame))
  boxes = _box_array(_need(entry, 'bbox', where), 'bbox', where)
  start = st_frame - int(one_based_st_frame)
  end = start + len(boxes)
  if end > num_frames:
    raise AnnotationError(f"{where}: field 'bbox' has {len(boxes)} boxes from frame {start}, "
                          f"past 'img_num' {num_frames}")
  return TubeRecord(
      vid=vid, qid=vid, query=query, num_frames=num_frames,
      fps=num_frames / HCSTVG_CLIP_SECONDS, width=width, height=height,
      span=np.array([start, end]), box_frames=np.arange(start, end),
      boxes=sanitize_boxes(xywh_to_xyxy(boxes), width, height), convention='hcstvg', source=where)


def read_hcstvg(path: str, *, skip_bad: bool = False,
                one_based_st_frame: bool = True) -> TubeReadResult:
  """An HC-STVG v1 (`caption`, `width`, `height`) or v2 (`English`, `img_size`) file."""
  data = _load_json(path, dict)
  return _collect(
      ((f'{path}:{vid}', (vid, entry)) for vid, entry in data.items()),
      lambda item, where: [parse_hcstvg_entry(*item, where,
                                              one_based_st_frame=one_based_st_frame)],
      skip_bad)


# ---------------------------------------------------------------------------------------------
# VidSTG.


def index_trajectories(vidor_dir: str) -> dict[str, str]:
  """VidOR video id -> path of its annotation file (`<dir>/**/<vid>.json`)."""
  out = {}
  for root, _, files in os.walk(vidor_dir):
    for name in files:
      if name.endswith('.json'):
        out[name[:-5]] = os.path.join(root, name)
  return out


@functools.lru_cache(maxsize=8)
def _trajectories(trajectory_file: str) -> list:
  """The per-frame object lists of a VidOR file (cached: consecutive entries share videos)."""
  return _need(_load_json(trajectory_file, dict), 'trajectories', trajectory_file)


def trajectory_boxes(trajectory_file: str, tid: int, begin: int, end: int
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Raw frames in [begin, end) where VidOR trajectory `tid` has a box, and those xyxy boxes."""
  frames = _trajectories(trajectory_file)
  ids, boxes = [], []
  for fid in range(begin, min(end, len(frames))):
    for obj in frames[fid]:
      if obj.get('tid') == tid:
        where = f'{trajectory_file}:trajectories[{fid}]'
        box = _need(obj, 'bbox', where)
        try:
          boxes.append([float(box[k]) for k in ('xmin', 'ymin', 'xmax', 'ymax')])
        except (KeyError, TypeError, ValueError):
          raise AnnotationError(f"{where}: field 'bbox' must be {{xmin, ymin, xmax, ymax}}, "
                                f'got {box!r}') from None
        ids.append(fid)
        break
  return np.asarray(ids, np.int64), np.asarray(boxes, np.float64).reshape(-1, 4)


def _fid_range(entry: dict, field: str, where: str) -> tuple[int, int]:
  value = _need(entry, field, where)
  if not isinstance(value, dict):
    raise AnnotationError(f'{where}: field {field!r} must be {{begin_fid, end_fid}}')
  begin = _int(_need(value, 'begin_fid', where), f'{field}.begin_fid', where)
  end = _int(_need(value, 'end_fid', where), f'{field}.end_fid', where)
  if end < begin:
    raise AnnotationError(f'{where}: field {field!r} ends ({end}) before it begins ({begin})')
  return begin, end


def parse_vidstg_entry(entry: Any, where: str, *, trajectory_file: str | None = None,
                       sentence_types: Sequence[str] = ('declarative', 'interrogative'),
                       cgstvg_inclusive_end: bool = False) -> list[TubeRecord]:
  """One entry of a VidSTG `*_annotations.json` list: one record per caption and question.

  Without `trajectory_file` the records carry no boxes (the public sentence files have none).
  `cgstvg_inclusive_end` reproduces CG-STVG (`datasets/vidstg.py`), which reads `end_fid` as
  inclusive and clips it to the used segment: one frame more than the half-open annotation
  wherever `end_fid` < `frame_count`. Off by default (the file's convention).
  """
  if not isinstance(entry, dict):
    raise AnnotationError(f'{where}: expected a JSON object, got {type(entry).__name__}')
  vid = _need(entry, 'vid', where)
  if not isinstance(vid, str) or not vid:
    raise AnnotationError(f"{where}: field 'vid' must be a non-empty string, got {vid!r}")
  num_frames = _int(_need(entry, 'frame_count', where), 'frame_count', where, 1)
  fps = _number(_need(entry, 'fps', where), 'fps', where)
  width = _int(_need(entry, 'width', where), 'width', where, 1)
  height = _int(_need(entry, 'height', where), 'height', where, 1)
  seg_begin, seg_last = _fid_range(entry, 'used_segment', where)      # inclusive
  begin, end = _fid_range(entry, 'temporal_gt', where)                # half-open
  if not (seg_begin <= begin < end <= seg_last + 1 <= num_frames) or fps <= 0:
    raise AnnotationError(f"{where}: field 'temporal_gt' [{begin}, {end}) must lie in "
                          f"'used_segment' [{seg_begin}, {seg_last}] within {num_frames} frames")
  if cgstvg_inclusive_end:
    end = min(end, seg_last) + 1
  records = []
  for field, sentence_type in SENTENCE_FIELDS:
    if sentence_type not in sentence_types:
      continue
    sentences = entry.get(field) or []
    if not isinstance(sentences, list):
      raise AnnotationError(f'{where}: field {field!r} must be a list')
    for k, sentence in enumerate(sentences):
      at = f'{where}:{field}[{k}]'
      if not isinstance(sentence, dict):
        raise AnnotationError(f'{at}: expected a JSON object')
      query = _text(_need(sentence, 'description', at), 'description', at)
      target = _int(_need(sentence, 'target_id', at), 'target_id', at)
      if trajectory_file:
        box_frames, boxes = trajectory_boxes(trajectory_file, target, begin, end)
        if not len(box_frames):
          raise AnnotationError(f'{at}: target {target} has no box in [{begin}, {end}) of '
                                f'{trajectory_file}')
      else:
        box_frames, boxes = np.zeros(0, np.int64), np.zeros((0, 4))
      records.append(TubeRecord(
          vid=vid, qid=f'{vid}:{where.rsplit(":", 1)[-1]}:{field}[{k}]', query=query,
          num_frames=num_frames, fps=fps, width=width, height=height,
          span=np.array([begin, end]), box_frames=box_frames,
          boxes=sanitize_boxes(boxes, width, height), convention='vidstg',
          segment=np.array([seg_begin, seg_last + 1]), sentence_type=sentence_type,
          target_id=target, video_key=vid, source=at))
  return records


def read_vidstg(path: str, *, vidor_dir: str | None = None,
                trajectories: Mapping[str, str] | None = None, skip_bad: bool = False,
                sentence_types: Sequence[str] = ('declarative', 'interrogative'),
                cgstvg_inclusive_end: bool = False) -> TubeReadResult:
  """A VidSTG sentence file, joined with VidOR trajectory files (from `vidor_dir`, searched
  recursively, or an explicit `trajectories` {vid: path}) for the boxes.

  Without either, records carry the temporal ground truth only. An entry whose video has no
  trajectory file is malformed (raised, or skipped and counted). `cgstvg_inclusive_end`: see
  `parse_vidstg_entry`.
  """
  data = _load_json(path, list)
  if vidor_dir is not None and trajectories is None:
    trajectories = index_trajectories(vidor_dir)

  def parse(entry, where):
    trajectory_file = None
    if trajectories is not None:
      vid = entry.get('vid') if isinstance(entry, dict) else None
      trajectory_file = trajectories.get(vid)
      if trajectory_file is None:
        raise AnnotationError(f"{where}: field 'vid': no VidOR trajectory file for {vid!r}")
    return parse_vidstg_entry(entry, where, trajectory_file=trajectory_file,
                              sentence_types=sentence_types,
                              cgstvg_inclusive_end=cgstvg_inclusive_end)
  return _collect(((f'{path}:{i}', entry) for i, entry in enumerate(data)), parse, skip_bad)


# ---------------------------------------------------------------------------------------------
# LLaVA_Next_STVG proposals (`dino_sam2_proposals/<video stem>.json`).

PROPOSAL_TRACK_FIELDS = ('track_id', 'bboxes', 'rles', 'class_name', 'box_format', 'img_width',
                         'img_height')


@dataclasses.dataclass(frozen=True)
class CandidateTubes:
  """The candidate tubes (tracks) of one video, on the proposal frames.

  Attributes:
    video_key: the file stem (video name without extension).
    frame_ids: (F,) int64 frame indices parsed from the `sample_frames` file names.
    boxes: (P, F, 4) float32 xyxy pixel boxes, one per track and proposal frame.
    track_ids, class_names: per track.
    rles: per track, the F COCO RLE masks as stored (undecoded).
    box_format, width, height: as the first track states them.
  """
  video_key: str
  frame_ids: np.ndarray
  boxes: np.ndarray
  track_ids: tuple[Any, ...]
  class_names: tuple[str, ...]
  rles: tuple[list, ...]
  box_format: str
  width: int
  height: int


def read_proposals(path: str) -> CandidateTubes:
  """One proposal file. Tracks are read positionally as the official `pack_tracks` does (the 7
  values in order: track id, per-frame [[x1, y1, x2, y2]], RLEs, class, box format, W, H)."""
  data = _load_json(path, dict)
  names = _need(data, 'sample_frames', path)
  try:
    frame_ids = np.asarray([int(str(n).split('.')[0]) for n in names], np.int64)
  except ValueError:
    raise AnnotationError(
        f"{path}: field 'sample_frames' must hold names like '00010.jpg'") from None
  tracks = _need(data, 'dino_sam2_proposals', path)
  if not isinstance(tracks, list):
    raise AnnotationError(f"{path}: field 'dino_sam2_proposals' must be a list of tracks")
  ids, boxes, rles, classes = [], [], [], []
  box_format, width, height = 'xyxy', 0, 0
  for p, track in enumerate(tracks):
    where = f'{path}:dino_sam2_proposals[{p}]'
    if not isinstance(track, dict) or len(track) != len(PROPOSAL_TRACK_FIELDS):
      raise AnnotationError(f'{where}: a track must be a dict of the 7 fields '
                            f'{PROPOSAL_TRACK_FIELDS}')
    track_id, track_boxes, track_rles, class_name, box_format, width, height = track.values()
    try:
      track_boxes = np.asarray(track_boxes, np.float32).reshape(len(track_boxes), 4)
    except (TypeError, ValueError):
      raise AnnotationError(
          f'{where}: field bboxes must be one [[x1, y1, x2, y2]] per frame') from None
    if len(track_boxes) != len(frame_ids):
      raise AnnotationError(f"{where}: field bboxes has {len(track_boxes)} frames, "
                            f"'sample_frames' {len(frame_ids)}")
    ids.append(track_id)
    boxes.append(track_boxes)
    rles.append(list(track_rles))
    classes.append(str(class_name))
  stem = os.path.splitext(os.path.basename(path))[0]
  return CandidateTubes(
      video_key=stem, frame_ids=frame_ids,
      boxes=np.stack(boxes) if boxes else np.zeros((0, len(frame_ids), 4), np.float32),
      track_ids=tuple(ids), class_names=tuple(classes), rles=tuple(rles),
      box_format=str(box_format), width=int(width), height=int(height))


def proposals_path(data_dir: str, vid: str) -> str:
  """`<data_dir>/dino_sam2_proposals/<vid without extension>.json`, as the official loader."""
  return os.path.join(data_dir, 'dino_sam2_proposals', vid.split('.')[0] + '.json')


# ---------------------------------------------------------------------------------------------
# Dataset routing: dataset name and split -> the file and reader.

# dataset -> split -> candidate file names in anno_dir (the first existing one is read).
STVG_SPLIT_FILES: dict[str, dict[str, tuple[str, ...]]] = {
    'hcstvg': {'train': ('train.json',), 'test': ('test.json',)},
    # The official v2 val split; CG-STVG's `annos/hcstvg_v2/test.json` is the same file.
    'hcstvg2': {'train': ('train_v2.json', 'train.json'), 'val': ('val_v2.json', 'test.json')},
    'vidstg': {s: (f'{s}_annotations.json',) for s in ('train', 'val', 'test')},
    'synthetic_tubes': {s: (f'hcstvg_{s}.json',) for s in ('train', 'val')},
}
# dataset -> the evaluation protocol of `jaxvg.evaluation.evaluate`.
STVG_PROTOCOLS = {'hcstvg': 'hcstvg', 'hcstvg2': 'hcstvg', 'vidstg': 'vidstg',
                  'synthetic_tubes': 'hcstvg'}


def read_stvg_split(dataset: str, anno_dir: str, split: str, *, vidor_dir: str | None = None,
                    skip_bad: bool = False, **kwargs) -> TubeReadResult:
  """Reads one split of an STVG dataset (`vidor_dir`: VidOR annotations, for VidSTG boxes)."""
  if dataset not in STVG_SPLIT_FILES:
    raise UserError(f'unknown STVG dataset {dataset!r}; known: {sorted(STVG_SPLIT_FILES)}')
  names = STVG_SPLIT_FILES[dataset].get(split)
  if names is None:
    raise UserError(f'{dataset} has no split {split!r}; splits: '
                   f'{sorted(STVG_SPLIT_FILES[dataset])}')
  for name in names:
    path = os.path.join(anno_dir, name)
    if os.path.exists(path):
      if dataset == 'vidstg':
        return read_vidstg(path, vidor_dir=vidor_dir, skip_bad=skip_bad, **kwargs)
      return read_hcstvg(path, skip_bad=skip_bad, **kwargs)
  raise UserError(f'no annotation file for {dataset}/{split} in {anno_dir!r}; looked '
                          f'for {list(names)}')
