"""What the zero-shot grounder saw: its attention heat map over the frames, the candidate tubes,
the chosen one and the temporal span.

One panel per query: a strip of sampled frames, each with the grounding token's spatial relative
map blended in (jet colours, one scale for the whole video) and the candidates' boxes (the chosen
track thick orange, the others thin white); below, the chosen track's per-frame scores with the
predicted span shaded. Colours and boxes are written into the pixels (testable); Matplotlib only
lays the panels out, on the Agg backend.
"""
from __future__ import annotations

import pathlib
import textwrap
from typing import Sequence

import numpy as np

from jaxvg.modules.pooling import bilinear_resize_matrix
from jaxvg.plotting_tubes import PRED_COLOUR, draw_box

DPI = 100
WIDTH_PX, ROW_HEIGHT_PX = 1000, 420
STRIP_FRAMES = 8
DISPLAY_SHORT_SIDE = 240   # frames are enlarged (pixel repeat) to at least this to draw on
OTHER_COLOUR = (255, 255, 255)


def heat_overlay(frame: np.ndarray, heat: np.ndarray, vmax: float, alpha: float = 0.5
                 ) -> np.ndarray:
  """(h, w, 3) uint8 `frame` blended with a (g, g) map upsampled bilinearly (torch
  `interpolate`, align_corners=False, as the official frame scores upsample it) and coloured by
  jet over [0, vmax]."""
  from matplotlib import colormaps
  h, w = frame.shape[:2]
  g_h, g_w = heat.shape
  up = bilinear_resize_matrix(g_h, h) @ np.asarray(heat, np.float64) @ bilinear_resize_matrix(
      g_w, w).T
  colour = colormaps['jet'](np.clip(up / max(vmax, 1e-12), 0.0, 1.0))[..., :3] * 255.0
  return np.round((1 - alpha) * frame + alpha * colour).astype(np.uint8)


def annotated_frames(grounded, count: int = STRIP_FRAMES) -> tuple[np.ndarray, np.ndarray]:
  """Up to `count` of the sampled frames (evenly spread), heat map and boxes drawn; returns
  (N, h, w, 3) uint8 frames and their positions among the samples. `grounded`: a
  `runner.GroundedTube`."""
  frames, tubes, out = grounded.frames, grounded.tubes, grounded.out
  zoom = -(-DISPLAY_SHORT_SIDE // min(frames.shape[1:3]))   # small towers read tiny frames
  frames = frames.repeat(zoom, axis=1).repeat(zoom, axis=2)
  heat = out['spatial_map']
  picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).astype(int))
  scale = np.array([frames.shape[2] / tubes.width, frames.shape[1] / tubes.height] * 2)
  vmax = float(heat.max())
  side = min(frames.shape[1:3])
  thickness = {True: max(2, side // 60), False: max(1, side // 160)}   # chosen, others
  drawn = []
  for k in picks:
    image = heat_overlay(frames[k], heat[k], vmax)
    boxes = tubes.boxes[:, grounded.samples[k]]
    for p in [p for p in range(len(boxes)) if p != grounded.track] + [grounded.track]:
      if boxes[p].any():
        chosen = p == grounded.track
        image = draw_box(image, boxes[p] * scale, PRED_COLOUR if chosen else OTHER_COLOUR,
                         thickness[chosen])
    drawn.append(image)
  return np.stack(drawn), picks


def plot_grounding(groundings: Sequence, queries: Sequence[str], path: str | pathlib.Path
                   ) -> pathlib.Path:
  """Writes one PNG with a panel per (`runner.GroundedTube`, query); returns its path."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  fig = plt.figure(figsize=(WIDTH_PX / DPI, ROW_HEIGHT_PX * len(groundings) / DPI), dpi=DPI)
  outer = fig.add_gridspec(len(groundings), 1, hspace=0.45, left=0.05, right=0.98, top=0.92,
                           bottom=0.08)
  for row, (grounded, query) in enumerate(zip(groundings, queries)):
    images, picks = annotated_frames(grounded)
    frame_ids = grounded.tubes.frame_ids[grounded.samples]
    grid = outer[row].subgridspec(2, len(images), height_ratios=[3, 1.3], hspace=0.3)
    for k, (image, pick) in enumerate(zip(images, picks)):
      ax = fig.add_subplot(grid[0, k])
      ax.imshow(image)
      ax.set_title(f'#{frame_ids[pick]}', fontsize=8)
      ax.axis('off')
      if k == 0:
        track_id = grounded.tubes.track_ids[grounded.track]
        ax.text(0, 1.35, textwrap.shorten(f'"{query}" -> track {track_id!r} (orange); heat: '
                                          'grounding-token attention', 110),
                transform=ax.transAxes, fontsize=10, fontweight='bold', va='bottom')
    scores = grounded.out['frame_scores']
    first, last = grounded.out['span']
    ax = fig.add_subplot(grid[1, :])
    ax.bar(np.arange(len(scores)), scores, color='0.5')
    ax.axvspan(first - 0.5, last + 0.5, color=np.array(PRED_COLOUR) / 255, alpha=0.35,
               label=f'span: frames {frame_ids[first]}-{frame_ids[last]}')
    ax.set_xticks(np.arange(len(scores)), [str(f) for f in frame_ids], fontsize=7)
    ax.set_xlim(-0.5, len(scores) - 0.5)
    ax.set_ylabel('frame score', fontsize=8)
    ax.legend(loc='upper right', fontsize=8)
  path = pathlib.Path(path)
  fig.savefig(path, dpi=DPI)
  plt.close(fig)
  return path
