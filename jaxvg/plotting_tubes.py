"""One PNG per predicted tube: thumbnails of frames inside the predicted span with the predicted
box (and the GT box when given) drawn, above a timeline with the predicted and GT spans shaded.

Boxes are drawn into the thumbnails' pixels (`draw_box`), so what the PNG shows is testable; the
figure size is fixed (WIDTH_PX x HEIGHT_PX). Matplotlib runs on the Agg backend.
"""
from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np

DPI = 100
WIDTH_PX, HEIGHT_PX = 1000, 420
PRED_COLOUR = (255, 140, 0)
GT_COLOUR = (40, 200, 60)


def draw_box(frame: np.ndarray, box: Sequence[float], colour: Sequence[int],
             thickness: int = 2) -> np.ndarray:
  """A copy of (H, W, 3) uint8 `frame` with the xyxy pixel box outlined (clipped to the frame)."""
  out = frame.copy()
  h, w = frame.shape[:2]
  x1, y1, x2, y2 = (int(round(v)) for v in np.clip(box, 0, [w, h, w, h]))
  if x2 <= x1 or y2 <= y1:
    return out
  t = thickness
  out[y1:min(y1 + t, y2), x1:x2] = colour
  out[max(y2 - t, y1):y2, x1:x2] = colour
  out[y1:y2, x1:min(x1 + t, x2)] = colour
  out[y1:y2, max(x2 - t, x1):x2] = colour
  return out


def _box_at(row: dict, frame_id: int) -> np.ndarray | None:
  ids = list(row.get('frame_ids', []))
  return np.asarray(row['boxes'][ids.index(frame_id)]) if frame_id in ids else None


def tube_thumbnails(row: dict, frames: np.ndarray, frame_ids: np.ndarray, width: int, height: int,
                    gt: dict | None = None, count: int = 6) -> tuple[np.ndarray, np.ndarray]:
  """Up to `count` stored frames evenly spread over the predicted span (all frames if none fall
  in it), boxes drawn; returns (N, h, w, 3) thumbnails and their raw frame ids.

  row / gt: submission / ground-truth rows ({span, frame_ids, boxes}, xyxy pixels of the
  original width x height frame); frames (T, h, w, 3) the stored (resized) frames at frame_ids.
  """
  frame_ids = np.asarray(frame_ids)
  inside = np.flatnonzero((frame_ids >= row['span'][0]) & (frame_ids <= row['span'][1]))
  pool = inside if len(inside) else np.arange(len(frame_ids))
  picks = pool[np.unique(np.linspace(0, len(pool) - 1, min(count, len(pool))).astype(int))]
  scale = np.array([frames.shape[2] / width, frames.shape[1] / height] * 2)
  thumbs = []
  for k in picks:
    thumb = frames[k]
    for source, colour in ((gt, GT_COLOUR), (row, PRED_COLOUR)):
      box = _box_at(source, int(frame_ids[k])) if source is not None else None
      if box is not None:
        thumb = draw_box(thumb, box * scale, colour)
    thumbs.append(thumb)
  return np.stack(thumbs), frame_ids[picks]


def plot_tube(row: dict, frames: np.ndarray, frame_ids: np.ndarray, *, width: int, height: int,
              num_frames: int, fps: float, path: str | pathlib.Path, gt: dict | None = None,
              query: str = '', count: int = 6) -> pathlib.Path:
  """Writes the PNG of one predicted tube `row` (see `tube_thumbnails`); returns its path."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  thumbs, picked = tube_thumbnails(row, frames, frame_ids, width, height, gt, count)
  fig = plt.figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
  grid = fig.add_gridspec(2, len(thumbs), height_ratios=[3, 1], hspace=0.35, left=0.04,
                          right=0.98, top=0.9, bottom=0.14)
  for k, (thumb, frame_id) in enumerate(zip(thumbs, picked)):
    ax = fig.add_subplot(grid[0, k])
    ax.imshow(thumb)
    ax.set_title(f'{frame_id / fps:.1f} s (#{frame_id})', fontsize=8)
    ax.axis('off')
  timeline = fig.add_subplot(grid[1, :])
  for source, colour, label, y in ((gt, GT_COLOUR, 'ground truth', 0.55),
                                   (row, PRED_COLOUR, 'prediction', 0.05)):
    if source is not None:
      start, end = (v / fps for v in source['span'])
      timeline.axvspan(start, end, ymin=y, ymax=y + 0.4, color=np.array(colour) / 255,
                       alpha=0.6, lw=0, label=label)
  timeline.plot(picked / fps, np.full(len(picked), 0.5), 'k|', markersize=14)
  timeline.set_xlim(0, num_frames / fps)
  timeline.set_yticks([])
  timeline.set_xlabel('time (s)', fontsize=9)
  timeline.legend(loc='upper right', fontsize=8, ncol=2)
  fig.suptitle(f'{query!r}' if query else str(row.get('qid', '')), fontsize=10)
  path = pathlib.Path(path)
  fig.savefig(path, dpi=DPI)
  plt.close(fig)
  return path
