"""The typed record of spatio-temporal video grounding (STVG): one query, one object tube.

A `TubeRecord` is the STVG twin of `GroundingRecord`. Everything is in **raw frames** of the source
video, 0-based, so boxes map exactly onto any sampled frames that keep their raw index:
  span       [start, end) half-open, always (readers convert each file's convention);
  box_frames the raw frames that carry a GT box (sorted, inside the span);
  boxes      (K, 4) xyxy pixels of the original frame, corners sorted and clipped to the frame.
`convention` names the evaluation protocol ('hcstvg': inclusive frame ranges; 'vidstg':
half-open), and `to_json()` writes the span the way that protocol reads it, so the row is what
`jaxvg.evaluation.evaluate(convention, rows, gt_rows)` takes as ground truth.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from jaxvg.evaluation.stvg import CONVENTIONS

SENTENCE_TYPES = ('', 'declarative', 'interrogative')


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
  """(..., 4) [x, y, w, h] -> [x1, y1, x2, y2] (w, h may be negative: corners are not sorted)."""
  boxes = np.asarray(boxes, np.float64)
  return np.concatenate([boxes[..., :2], boxes[..., :2] + boxes[..., 2:]], axis=-1)


def sanitize_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
  """(..., 4) xyxy -> corners sorted (x1 <= x2, y1 <= y2) and clipped to [0, W] x [0, H]."""
  boxes = np.asarray(boxes, np.float64)
  xs = np.sort(boxes[..., 0::2], axis=-1).clip(0, width)
  ys = np.sort(boxes[..., 1::2], axis=-1).clip(0, height)
  return np.stack([xs[..., 0], ys[..., 0], xs[..., 1], ys[..., 1]], axis=-1)


@dataclasses.dataclass(frozen=True, eq=False)
class TubeRecord:
  """One (video, query) pair of an STVG benchmark with its ground-truth tube.

  Attributes:
    vid: video id as the annotation names it (HC-STVG: the file name, e.g. '55_x.mp4').
    qid: query id (unique within a split; the key of submissions and query features).
    query: the sentence.
    num_frames: raw (decoded) frame count of the video.
    fps: native frame rate of the video.
    width, height: original frame size in pixels (the boxes' coordinate frame).
    span: (2,) int64 GT span [start, end) in 0-based raw frames (half-open).
    box_frames: (K,) int64 raw frames carrying a GT box, sorted, inside `span`.
    boxes: (K, 4) float32 xyxy pixels, corners sorted, clipped to the frame.
    convention: evaluation protocol, one of `jaxvg.evaluation.stvg.CONVENTIONS`.
    segment: (2,) int64 [start, end) raw frames the benchmark uses (VidSTG `used_segment`;
      else the whole video).
    sentence_type: VidSTG 'declarative' / 'interrogative' ('' elsewhere).
    target_id: VidSTG trajectory id of the target (-1 elsewhere).
    video_key: key of the video's frames (the file stem).
    source: 'file:entry' the record was read from (for error messages).
  """
  vid: str
  qid: Any
  query: str
  num_frames: int
  fps: float
  width: int
  height: int
  span: np.ndarray
  box_frames: np.ndarray
  boxes: np.ndarray
  convention: str = 'hcstvg'
  segment: np.ndarray | None = None
  sentence_type: str = ''
  target_id: int = -1
  video_key: str = ''
  source: str = ''

  def __post_init__(self):
    if self.convention not in CONVENTIONS:
      raise ValueError(f'{self.source}: unknown convention {self.convention!r}')
    if self.sentence_type not in SENTENCE_TYPES:
      raise ValueError(f'{self.source}: unknown sentence type {self.sentence_type!r}')
    span = np.asarray(self.span, np.int64).reshape(2)
    frames = np.asarray(self.box_frames, np.int64).reshape(-1)
    boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
    if not 0 <= span[0] < span[1] <= self.num_frames:
      raise ValueError(f'{self.source}: span {span.tolist()} outside 0..{self.num_frames}')
    if len(frames) != len(boxes) or np.any(np.diff(frames) <= 0) or (
        len(frames) and (frames[0] < span[0] or frames[-1] >= span[1])):
      raise ValueError(f'{self.source}: box frames must be increasing and inside the span')
    segment = (np.array([0, self.num_frames], np.int64) if self.segment is None
               else np.asarray(self.segment, np.int64).reshape(2))
    for name, value in (('span', span), ('box_frames', frames), ('boxes', boxes),
                        ('segment', segment)):
      value.setflags(write=False)
      object.__setattr__(self, name, value)
    if not self.video_key:
      object.__setattr__(self, 'video_key', self.vid.rsplit('.', 1)[0])

  @property
  def duration(self) -> float:
    return self.num_frames / self.fps

  def dense_boxes(self) -> tuple[np.ndarray, np.ndarray]:
    """(num_frames, 4) boxes on every raw frame (zeros off the tube) and the (num_frames,) mask."""
    boxes = np.zeros((self.num_frames, 4), np.float32)
    mask = np.zeros(self.num_frames, bool)
    boxes[self.box_frames] = self.boxes
    mask[self.box_frames] = True
    return boxes, mask

  def eval_span(self) -> list[int]:
    """The span as the record's protocol reads it: inclusive [s, e-1] (HC-STVG) or [s, e)."""
    start, end = (int(v) for v in self.span)
    return [start, end - 1] if self.convention == 'hcstvg' else [start, end]

  def to_json(self) -> dict[str, Any]:
    """The STVG ground-truth row of `jaxvg.evaluation.evaluate(self.convention, ...)`."""
    row = {'qid': self.qid, 'vid': self.vid, 'query': self.query, 'span': self.eval_span(),
           'frame_ids': self.box_frames.tolist(),
           'boxes': np.round(self.boxes.astype(np.float64), 4).tolist(),
           'num_frames': self.num_frames, 'fps': self.fps,
           'width': self.width, 'height': self.height}
    if self.sentence_type:
      row['sentence_type'] = self.sentence_type
    if self.target_id >= 0:
      row['target_id'] = self.target_id
    return row
