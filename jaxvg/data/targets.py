"""Training targets exactly as the official R²-Tuning loaders build them.

`bind_boundary` and `saliency_target` mirror `Grounding.bind_boundary` / `bind_saliency`,
`TVSum.bind_saliency` and `YouTubeHighlights.bind_saliency` (float32 arithmetic as in torch). The
one deliberate difference: the positive clip is drawn from (seed, epoch, record index) instead of
Python's global `random`, so a resumed run draws the same clips.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxvg.data.records import GroundingRecord

QVH_MAX_SALIENCY = 12.0  # 3 annotators x score 4.


@dataclasses.dataclass(frozen=True)
class Targets:
  """Per-sample targets.

  Attributes:
    num_clips: valid clips T (TVSum: min(video, labels)).
    windows: (G, 2) float32 ground truth in clip units (seconds x fps), clamped and widened.
    saliency: (T,) float32 per-clip saliency.
    pos_clip: a clip drawn uniformly among the positives (0 if there is none).
  """
  num_clips: int
  windows: np.ndarray
  saliency: np.ndarray
  pos_clip: int


def bind_boundary(windows: np.ndarray, num_clips: int, fps: float) -> np.ndarray:
  """(G, 2) seconds -> clamped to [0, T/fps], reversed swapped, < 1 clip widened to 1 clip."""
  max_time = np.float32(num_clips / fps)
  half = np.float32(0.5 / fps)
  b = np.clip(np.asarray(windows, np.float32).reshape(-1, 2), np.float32(0), max_time)
  b = np.where((b[:, 1] < b[:, 0])[:, None], b[:, ::-1], b)
  short = b[:, 1] - b[:, 0] < np.float32(1 / fps)
  centre = np.clip(b.sum(1) / np.float32(2), half, max_time - half)
  widened = np.stack([centre - half, centre + half], 1)
  return np.where(short[:, None], widened, b).astype(np.float32)


def lower_median(x: np.ndarray) -> float:
  """torch.median semantics: the lower of the two middle values for an even count."""
  return float(np.sort(x)[(x.shape[0] - 1) // 2])


def saliency_target(record: GroundingRecord, num_clips: int,
                    boundary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-clip saliency (T,) and the candidate positive clips, by the record's rule.

  `boundary` is the output of `bind_boundary` (seconds); `num_clips` the valid video length.
  """
  rule = record.saliency_rule
  if rule == 'qvh':
    full = np.zeros(max(int(record.duration * record.fps), num_clips), np.float32)
    for idx, score in zip(record.relevant_clip_ids, record.saliency_scores):
      if idx < full.shape[0]:
        full[idx] = float(sum(int(s) for s in score)) / QVH_MAX_SALIENCY
    saliency = full[:num_clips]
    return saliency, np.flatnonzero(saliency > 0)
  if rule == 'binary':
    saliency = np.zeros(num_clips, np.float32)
    for start, end in (boundary * np.float32(record.fps)).tolist():
      lo, hi = math.ceil(start), math.ceil(end)
      if lo >= hi:  # float32 rounding inside one clip; the official loader would assert here.
        lo, hi = int(start), int(start) + 1
      saliency[lo:min(hi, num_clips)] = 1
    return saliency, np.flatnonzero(saliency > 0)
  if rule == 'tvsum':
    saliency = ((record.labels.sum(1) - 20) / 80).astype(np.float32)[:num_clips]
    return saliency, np.flatnonzero(saliency > lower_median(saliency))
  if rule == 'youtube':
    saliency = ((record.labels[:, 0] + 1) / 2).astype(np.float32)[:num_clips]
    return saliency, np.flatnonzero(saliency > 0.5)
  return np.zeros(num_clips, np.float32), np.zeros(0, np.int64)


def draw_pos_clip(candidates: np.ndarray, seed: int, epoch: int, index: int) -> int:
  """A uniform draw among `candidates`, a pure function of (seed, epoch, record index)."""
  if candidates.shape[0] == 0:
    return 0
  rng = np.random.default_rng([seed, epoch, index])
  return int(candidates[rng.integers(candidates.shape[0])])


def effective_num_clips(record: GroundingRecord, video_clips: int) -> int:
  """Valid clips: TVSum truncates video and labels to the shorter (they differ by < 5)."""
  if record.saliency_rule == 'tvsum':
    return min(video_clips, record.labels.shape[0])
  return video_clips


def make_targets(record: GroundingRecord, video_clips: int, *, seed: int, epoch: int,
                 index: int) -> Targets:
  """All targets of one record whose video has `video_clips` clips."""
  num_clips = effective_num_clips(record, video_clips)
  boundary = bind_boundary(record.relevant_windows, num_clips, record.fps)
  saliency, candidates = saliency_target(record, num_clips, boundary)
  return Targets(
      num_clips=num_clips,
      windows=(boundary * np.float32(record.fps)).astype(np.float32),
      saliency=saliency,
      pos_clip=draw_pos_clip(candidates, seed, epoch, index))
