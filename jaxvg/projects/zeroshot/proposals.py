"""Candidate tubes of a user's video (`--proposals tracks.json`): the format, its validation, masks.

The zero-shot grounder scores candidate object tubes; it never draws a box itself. A user's
tracks file gives, for a list of raw frames, one box per track and frame:

    {"frames": [0, 10, 20, 30],                     raw (decode-order, 0-based) frame indices,
                                                    strictly increasing
     "tracks": [{"id": "person 1",                  any JSON value; echoed in the output
                 "boxes": [[x1, y1, x2, y2], null, [x1, y1, x2, y2], [x1, y1, x2, y2]]},
                ...]}                               one entry per frame, null where the track is
                                                    absent; xyxy pixels of the video's frames

A track's mask on a frame is its box's rectangle. This is the official proposal file
(`dino_sam2_proposals/<video>.json`, read by `jaxvg.data.stvg_readers.read_proposals`) without the
SAM2 masks: `frames` are its `sample_frames` numbers times `data.proposal_frame_unit`, a track's
`boxes` its `bboxes` with [0, 0, 0, 0] written as null. An official file is also accepted as is
(its RLE masks are then used).
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np

from jaxvg.data.records import AnnotationError
from jaxvg.data.stvg_readers import CandidateTubes, read_proposals

BOX_SLACK = 1.0  # pixels a box may pass the frame's border by (rounding of tracker outputs)


def _load(path: str) -> dict:
  try:
    with open(path) as f:
      data = json.load(f)
  except FileNotFoundError:
    raise AnnotationError(f'{path}: no such proposals file') from None
  except json.JSONDecodeError as e:
    raise AnnotationError(f'{path}:{e.lineno}: not JSON ({e.msg})') from None
  if not isinstance(data, dict):
    raise AnnotationError(f"{path}: expected an object with fields 'frames' and 'tracks'")
  return data


def _frames(value: Any, path: str) -> np.ndarray:
  ok = isinstance(value, list) and value and all(
      isinstance(f, int) and not isinstance(f, bool) and f >= 0 for f in value)
  if not ok or np.any(np.diff(value) <= 0):
    raise AnnotationError(f"{path}: field 'frames' must be a non-empty list of raw frame indices "
                          f'(integers >= 0, strictly increasing), got {str(value)[:80]}')
  return np.asarray(value, np.int64)


def _box(value: Any, where: str, width: int, height: int) -> np.ndarray:
  if value is None:
    return np.zeros(4, np.float32)
  ok = (isinstance(value, list) and len(value) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in value))
  if ok:
    x1, y1, x2, y2 = value
    ok = (-BOX_SLACK <= x1 < x2 <= width + BOX_SLACK
          and -BOX_SLACK <= y1 < y2 <= height + BOX_SLACK)
  if not ok:
    raise AnnotationError(f'{where}: expected null or [x1, y1, x2, y2] pixels with x1 < x2, '
                          f'y1 < y2 inside the {width}x{height} frame, got {value!r}')
  return np.asarray(value, np.float32)


def read_tracks(path: str, width: int, height: int) -> CandidateTubes:
  """A user's tracks file (module docstring) for a `width` x `height` video; raises
  `AnnotationError` naming the file and field of the first problem."""
  data = _load(path)
  for field in ('frames', 'tracks'):
    if field not in data:
      raise AnnotationError(f'{path}: missing field {field!r} (a tracks file holds '
                            "'frames' and 'tracks'; see docs/zeroshot.md)")
  frame_ids = _frames(data['frames'], path)
  tracks = data['tracks']
  if not isinstance(tracks, list) or not tracks:
    raise AnnotationError(f"{path}: field 'tracks' must be a non-empty list of "
                          "{'id': ..., 'boxes': [...]}")
  ids, boxes = [], []
  for p, track in enumerate(tracks):
    where = f'{path}: tracks[{p}]'
    if not isinstance(track, dict) or 'boxes' not in track:
      raise AnnotationError(f"{where}: expected {{'id': ..., 'boxes': [...]}}")
    track_boxes = track['boxes']
    if not isinstance(track_boxes, list) or len(track_boxes) != len(frame_ids):
      raise AnnotationError(f"{where}.boxes: expected one entry per frame of 'frames' "
                            f'({len(frame_ids)}), got {str(track_boxes)[:80]}')
    stacked = np.stack([_box(b, f'{where}.boxes[{k}]', width, height)
                        for k, b in enumerate(track_boxes)])
    if not stacked.any():
      raise AnnotationError(f'{where}.boxes: the track has no box on any frame')
    ids.append(track.get('id', p))
    boxes.append(stacked)
  return CandidateTubes(
      video_key='', frame_ids=frame_ids, boxes=np.stack(boxes), track_ids=tuple(ids),
      class_names=tuple('' for _ in ids), rles=tuple([None] * len(frame_ids) for _ in ids),
      box_format='xyxy', width=width, height=height)


def read_candidates(path: str, width: int, height: int, frame_unit: int = 1) -> CandidateTubes:
  """A tracks file, or an official proposal file (its frame numbers times `frame_unit`, so that
  both give raw frames)."""
  if 'dino_sam2_proposals' not in _load(path):
    return read_tracks(path, width, height)
  tubes = read_proposals(path)
  if not len(tubes.track_ids):
    raise AnnotationError(f"{path}: field 'dino_sam2_proposals' holds no track")
  return dataclasses.replace(tubes, frame_ids=tubes.frame_ids * frame_unit, width=width,
                             height=height)


def box_mask(box: np.ndarray, height: int, width: int) -> np.ndarray:
  """(H, W) bool rectangle of an xyxy pixel box (corners rounded, clipped to the frame)."""
  x1, y1, x2, y2 = (int(round(v)) for v in np.clip(box, 0, [width, height, width, height]))
  mask = np.zeros((height, width), bool)
  mask[y1:y2, x1:x2] = True
  return mask
