"""The typed record every reader produces and every pipeline consumes.

One `GroundingRecord` is one (video, query) pair with its ground truth in seconds. Readers turn
each benchmark's layout into records; `to_json()` turns a record back into the QVHighlights-schema
dict the evaluation package takes as ground truth.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from jaxvg.errors import UserError

# How per-clip saliency targets are derived.
SALIENCY_RULES = ('qvh', 'binary', 'tvsum', 'youtube', 'none')


class AnnotationError(UserError):
  """A malformed annotation; the message names the file, line and field."""


@dataclasses.dataclass(frozen=True, eq=False)
class GroundingRecord:
  """One video-query pair with its ground truth (times in seconds).

  Attributes:
    vid: video id (the key of frames and video features).
    qid: query id as written in the annotation file (int or str; the key of query features).
    query: the natural-language query (TVSum: the title; YouTube: the domain name).
    duration: video length in seconds.
    fps: clips per second the video is sampled at (clip length = 1/fps).
    relevant_windows: (G, 2) float64 ground-truth windows in seconds; G may be 0.
    relevant_clip_ids: (N,) int32 clip ids scored by annotators (QVH), or None.
    saliency_scores: (N, 3) int32 per-annotator scores 0-4 at `relevant_clip_ids` (QVH), or None.
    labels: (T, A) float32 per-clip, per-annotator labels (TVSum: A=20 scores 1-5;
      YouTube: A=1 `match` in {-1, 0, 1}), or None.
    saliency_rule: one of SALIENCY_RULES.
    domain: TVSum/YouTube category ('' elsewhere).
    feature_key: key of the query features file (the qid; the vid for TVSum/YouTube).
    video_key: key of the frames / video features (the vid; TACoS appends '-cam-002').
    source: 'file:line' the record was read from (for error messages).
  """
  vid: str
  qid: Any
  query: str
  duration: float
  fps: float
  relevant_windows: np.ndarray
  relevant_clip_ids: np.ndarray | None = None
  saliency_scores: np.ndarray | None = None
  labels: np.ndarray | None = None
  saliency_rule: str = 'binary'
  domain: str = ''
  feature_key: str = ''
  video_key: str = ''
  source: str = ''

  def __post_init__(self):
    if self.saliency_rule not in SALIENCY_RULES:
      raise ValueError(f'{self.source}: unknown saliency rule {self.saliency_rule!r}')
    if not self.feature_key:
      object.__setattr__(self, 'feature_key', str(self.qid))
    if not self.video_key:
      object.__setattr__(self, 'video_key', self.vid)

  @property
  def num_clips(self) -> int:
    """Clips the annotation implies: the label rows if any, else int(duration * fps)."""
    if self.labels is not None:
      return int(self.labels.shape[0])
    return int(self.duration * self.fps)

  def to_json(self) -> dict[str, Any]:
    """The QVHighlights-schema ground-truth dict (the evaluation package's input)."""
    row: dict[str, Any] = {
        'qid': self.qid, 'query': self.query, 'duration': self.duration, 'vid': self.vid,
        'relevant_windows': self.relevant_windows.tolist(),
    }
    if self.relevant_clip_ids is not None:
      row['relevant_clip_ids'] = self.relevant_clip_ids.tolist()
      row['saliency_scores'] = self.saliency_scores.tolist()
    if self.labels is not None:
      row['label'] = self.labels.tolist()
    if self.domain:
      row['domain'] = self.domain
    return row
