"""Host-side decoding of a task's tube outputs into STVG submission rows.

A model sees T sampled frames (each with its raw frame index) and predicts, per sample, a box per
sampled frame (normalised cx, cy, w, h: the frames are resized without cropping, so normalised
coordinates are the same in the original frame) and a span over the sampled positions. Rows are
`{qid, span, frame_ids, boxes}` in raw frames of the original video, boxes linearly interpolated
to every raw frame between sampled ones, as the official CG-STVG evaluation does
(`engine/evaluate.py:linear_interp`), so `jaxvg.evaluation.evaluate('hcstvg'|'vidstg', rows, gt)`
scores them directly.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from jaxvg.evaluation.stvg import CONVENTIONS


def cxcywh_to_xyxy(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
  """(..., 4) normalised [cx, cy, w, h] -> xyxy pixels of a width x height frame."""
  boxes = np.asarray(boxes, np.float64)
  half = boxes[..., 2:] / 2
  xyxy = np.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)
  return xyxy * np.array([width, height, width, height])


def linear_interp(frame_ids: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Boxes on every raw frame from the first to the last of `frame_ids` (no extrapolation).

  Args:
    frame_ids: (K,) raw frame indices (any order, unique).
    boxes: (K, 4) boxes at those frames.
  Returns:
    frames (min..max,) and (len, 4) boxes; between two known frames a, b each coordinate is
    box_a + (f - a) * (box_b - box_a) / (b - a), the official formula.
  """
  frame_ids = np.asarray(frame_ids, np.int64)
  order = np.argsort(frame_ids)
  known, values = frame_ids[order], np.asarray(boxes, np.float64)[order]
  if len(np.unique(known)) != len(known):
    raise ValueError(f'frame ids must be unique, got {known.tolist()}')
  frames = np.arange(known[0], known[-1] + 1) if len(known) else known
  dense = np.stack([np.interp(frames, known, values[:, c]) for c in range(4)], axis=-1)
  return frames, dense.reshape(-1, 4)


def tube_row(qid: Any, span: tuple[int, int], frame_ids: np.ndarray, boxes: np.ndarray,
             convention: str) -> dict[str, Any]:
  """One submission row from a span [start, end] of raw frames (both inclusive, as the model
  picks a first and a last frame) and xyxy pixel boxes at `frame_ids`.

  The span is written as `convention` reads it: inclusive for 'hcstvg', [start, end + 1) for
  'vidstg'.
  """
  if convention not in CONVENTIONS:
    raise ValueError(f'convention must be one of {CONVENTIONS}, got {convention!r}')
  start, end = int(min(span)), int(max(span))
  frames, dense = linear_interp(frame_ids, boxes)
  return {'qid': qid, 'span': [start, end if convention == 'hcstvg' else end + 1],
          'frame_ids': frames.tolist(), 'boxes': np.round(dense, 4).tolist()}


def postprocess_tubes(outputs: Mapping[str, np.ndarray], metadata: Mapping[str, Any],
                      convention: str) -> list[dict]:
  """Batch outputs -> submission rows of the real samples.

  outputs: 'pred_boxes' (B, T, 4) normalised cxcywh per sampled frame; 'pred_span' (B, 2) int
    first and last sampled position of the predicted span (inclusive).
  metadata (host side, from `tube_examples.collate`): 'qid' (B,), 'frame_ids' (B, T) raw frame
    index of each sampled frame, 'frame_mask' (B, T), 'width', 'height' (B,) original frame
    sizes, 'sample_mask' (B,) real samples.
  """
  frame_mask = np.asarray(metadata['frame_mask']).astype(bool)
  sample_mask = np.asarray(metadata.get('sample_mask', np.ones(len(frame_mask), bool)), bool)
  rows = []
  for i in np.flatnonzero(sample_mask):
    valid = frame_mask[i]
    raw = np.asarray(metadata['frame_ids'][i])[valid]
    boxes = cxcywh_to_xyxy(np.asarray(outputs['pred_boxes'][i])[valid],
                           float(metadata['width'][i]), float(metadata['height'][i]))
    first, last = np.clip(np.asarray(outputs['pred_span'][i], np.int64), 0, valid.sum() - 1)
    qid = metadata['qid'][i]
    qid = qid.item() if isinstance(qid, np.generic) else qid
    rows.append(tube_row(qid, (raw[first], raw[last]), raw, boxes, convention))
  return rows


def hcstvg_challenge_format(rows: list[dict], vids: Mapping[Any, str], *,
                            one_based: bool = True) -> dict[str, dict]:
  """HC-STVG rows -> the challenge file `{vid: {st_frame, ed_frame, bbox: {frame: xyxy}}}` of
  `tzhhhh123/HC-STVG` `eval_hcvg.py` (inclusive st..ed).

  Its evaluator counts a frame in the temporal intersection when both files hold a box there, so
  boxes are kept inside the predicted span only. `one_based`: frames numbered like the
  annotation's `st_frame` (1-based) [assumed: the challenge ground truth file is not public].
  vids: qid -> video name (the key of the file).
  """
  shift = int(one_based)
  out = {}
  for row in rows:
    start, end = row['span']
    boxes = {str(f + shift): box for f, box in zip(row['frame_ids'], row['boxes'])
             if start <= f <= end}
    out[vids[row['qid']]] = {'st_frame': start + shift, 'ed_frame': end + shift, 'bbox': boxes}
  return out
