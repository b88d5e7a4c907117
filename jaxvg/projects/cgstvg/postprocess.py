"""CG-STVG inference post-processing (`models/post_processor.py`, `engine/evaluate.py`), host side.

Per sample: the span is the best start < end pair of log_softmax(start) + log_softmax(end)
over the valid frames, reported as [frame_ids[s], frame_ids[e] + 1) (the official half-open
end); boxes are cxcywh -> xyxy pixels of the original frame, clamped at 0. The official test
clip is run as its even and its odd frames: samples sharing a qid are merged (the union of their
boxes, the span from the earliest start to the latest end) and the boxes are linearly
interpolated to every frame between the first and the last sampled one.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np


def _log_softmax(x: np.ndarray) -> np.ndarray:
  x = x.astype(np.float64)
  shifted = x - x.max()
  return shifted - np.log(np.exp(shifted).sum())


def best_span(start_logits: np.ndarray, end_logits: np.ndarray) -> tuple[int, int]:
  """(s, e) maximising log_softmax(start)[s] + log_softmax(end)[e] over the valid frames with
  s < e STRICTLY: the official mask is tril(0), which also removes s == e (a one-frame clip
  gives (0, 0)). The first maximum in row-major order."""
  if len(start_logits) < 2:
    return 0, 0
  score = _log_softmax(start_logits)[:, None] + _log_softmax(end_logits)[None, :]
  score = np.where(np.triu(np.ones_like(score, dtype=bool), k=1), score, -np.inf)
  s, e = np.unravel_index(np.argmax(score), score.shape)
  return int(s), int(e)


def boxes_to_pixels(boxes: np.ndarray, height: float, width: float) -> np.ndarray:
  """(…, 4) normalised cxcywh -> xyxy pixels, clamped at 0 (not at the image size)."""
  cx, cy, w, h = np.moveaxis(boxes, -1, 0)
  xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
  return np.maximum(xyxy * np.array([width, height, width, height], boxes.dtype), 0)


def interpolate_boxes(boxes_by_frame: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
  """Fills every frame between sampled ones linearly (evaluate.py linear_interp)."""
  ids = sorted(boxes_by_frame)
  out = {f: np.asarray(boxes_by_frame[f]) for f in ids}
  for left, right in zip(ids[:-1], ids[1:]):
    delta = (out[right] - out[left]) / (right - left)
    for step in range(1, right - left):
      out[left + step] = out[left] + step * delta
  return {f: out[f] for f in sorted(out)}


def sample_tube(sted: np.ndarray, boxes: np.ndarray, frame_ids: Sequence[int], height: float,
                width: float) -> tuple[list[int], dict[int, np.ndarray]]:
  """One sample's final-layer outputs (T, 2), (T, 4) over its len(frame_ids) valid frames ->
  (span [start, end), {frame id: xyxy box})."""
  n = len(frame_ids)
  s, e = best_span(sted[:n, 0], sted[:n, 1])
  pixels = boxes_to_pixels(boxes[:n], height, width)
  return [int(frame_ids[s]), int(frame_ids[e]) + 1], dict(zip(map(int, frame_ids), pixels))


def postprocess(outputs: Mapping[str, np.ndarray], metadata: Mapping[str, Any],
                config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
  """Model outputs (numpy, layers first) + metadata (per sample: 'qid', 'frame_ids', 'height',
  'width'; None for padding samples) -> one row {qid, span, frame_ids, boxes} per qid."""
  del config
  spans, boxes = defaultdict(list), defaultdict(dict)
  for i, meta in enumerate(metadata['samples']):
    if meta is None:
      continue
    span, tube = sample_tube(outputs['sted'][-1][i], outputs['boxes'][-1][i], meta['frame_ids'],
                             meta['height'], meta['width'])
    spans[meta['qid']].append(span)
    boxes[meta['qid']].update(tube)
  rows = []
  for qid, parts in spans.items():
    tube = interpolate_boxes(boxes[qid])
    rows.append({'qid': qid, 'span': [min(p[0] for p in parts), max(p[1] for p in parts)],
                 'frame_ids': list(tube), 'boxes': [b.tolist() for b in tube.values()]})
  return rows
