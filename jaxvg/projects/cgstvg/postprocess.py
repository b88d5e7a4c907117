"""CG-STVG inference post-processing (`models/post_processor.py`, `engine/evaluate.py`), host side.

Per sample: the span is the best pair s < e of log_softmax(start)[s] + log_softmax(end)[e] over
the valid frames; boxes are the final layer's, normalised cxcywh -> xyxy pixels of the original
frame, clamped at 0. The official test clip is run as its even and its odd frames: samples that
share a qid are merged (the union of their boxes, the earliest start and the latest end) and the
boxes are linearly interpolated to every raw frame (`jaxvg.postprocess.tubes`).
"""
from __future__ import annotations

from typing import Any, Mapping

import ml_collections
import numpy as np

from jaxvg.data.stvg_readers import STVG_PROTOCOLS
from jaxvg.postprocess.tubes import cxcywh_to_xyxy, tube_row


def _log_softmax(x: np.ndarray) -> np.ndarray:
  shifted = np.asarray(x, np.float64) - np.max(x)
  return shifted - np.log(np.exp(shifted).sum())


def best_span(start_logits: np.ndarray, end_logits: np.ndarray) -> tuple[int, int]:
  """(s, e) maximising log_softmax(start)[s] + log_softmax(end)[e] with s < e STRICTLY: the
  official mask is tril(0), which removes s == e too (a one-frame clip gives (0, 0)). The first
  maximum in row-major order."""
  if len(start_logits) < 2:
    return 0, 0
  score = _log_softmax(start_logits)[:, None] + _log_softmax(end_logits)[None, :]
  score = np.where(np.triu(np.ones_like(score, dtype=bool), k=1), score, -np.inf)
  s, e = np.unravel_index(np.argmax(score), score.shape)
  return int(s), int(e)


def convention(config: ml_collections.ConfigDict) -> str:
  """The span convention of the dataset's evaluation protocol."""
  return STVG_PROTOCOLS.get(config.data.dataset, 'hcstvg')


def postprocess(outputs: Mapping[str, np.ndarray], metadata: Mapping[str, Any],
                config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
  """Outputs (numpy, decoder layers first: 'boxes' (n, B, T, 4), 'sted' (n, B, T, 2); with
  `model.tube_span` 'tube_sted' (B, T, 2)) and the
  tube metadata ('qid', 'frame_ids' (B, T), 'frame_mask', 'width', 'height', 'sample_mask') ->
  one row {qid, span, frame_ids, boxes} per qid, span written as `convention(config)` reads it.

  The official span [frame_ids[s], frame_ids[e] + 1) is the inclusive [frame_ids[s],
  frame_ids[e]] here; `tube_row` writes the dataset's convention."""
  frame_mask = np.asarray(metadata['frame_mask'], bool)
  sample_mask = np.asarray(metadata.get('sample_mask', np.ones(len(frame_mask), bool)), bool)
  # the final layer's span, or model.tube_span's where the model has it
  span_logits = outputs['tube_sted'] if 'tube_sted' in outputs else outputs['sted'][-1]
  spans, frames, boxes = {}, {}, {}
  for i in np.flatnonzero(sample_mask):
    valid = frame_mask[i]
    raw = np.asarray(metadata['frame_ids'][i])[valid]
    s, e = best_span(*np.asarray(span_logits[i])[valid].T)
    xyxy = np.maximum(cxcywh_to_xyxy(np.asarray(outputs['boxes'][-1][i])[valid],
                                     float(metadata['width'][i]), float(metadata['height'][i])), 0)
    qid = metadata['qid'][i]
    qid = qid.item() if isinstance(qid, np.generic) else qid
    start, end = spans.get(qid, (raw[s], raw[e]))
    spans[qid] = (min(start, raw[s]), max(end, raw[e]))
    frames[qid] = np.concatenate([frames.get(qid, raw[:0]), raw])
    boxes[qid] = np.concatenate([boxes.get(qid, xyxy[:0]), xyxy])
  return [tube_row(qid, spans[qid], frames[qid], boxes[qid], convention(config))
          for qid in spans]
