"""One PNG per video: for each query, the saliency curve over time with the top windows shaded
and scored, and a strip of thumbnails of those moments (the middle clip of each window).

Matplotlib runs on the Agg backend (no display needed); the figure size is fixed, so the PNG is
WIDTH_PX wide and ROW_HEIGHT_PX high per query.
"""
from __future__ import annotations

import pathlib
from typing import Any, Sequence

import numpy as np

DPI = 100
WIDTH_PX = 1000
ROW_HEIGHT_PX = 360
TOP_WINDOWS = 3
_COLOURS = ('tab:orange', 'tab:green', 'tab:purple', 'tab:red', 'tab:brown')


def _thumbnail_strip(thumbnails: np.ndarray, windows: Sequence[Sequence[float]], fps: float,
                     gap: int = 8) -> tuple[np.ndarray, list[float]]:
  """(H, W', 3) uint8 image of the windows' middle-clip thumbnails side by side, and the x
  centre of each thumbnail."""
  h, w = thumbnails.shape[1:3]
  strip = np.full((h, len(windows) * (w + gap) - gap, 3), 255, np.uint8)
  centres = []
  for i, (start, end, _) in enumerate(windows):
    clip = int(np.clip((start + end) / 2 * fps, 0, len(thumbnails) - 1))
    x = i * (w + gap)
    strip[:, x:x + w] = thumbnails[clip]
    centres.append(x + w / 2)
  return strip, centres


def plot_predictions(rows: Sequence[dict], video: Any, path: str | pathlib.Path,
                     top: int = TOP_WINDOWS) -> pathlib.Path:
  """Writes the PNG of `rows` (predict() output) on `video` (an EncodedVideo); returns its path."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  path = pathlib.Path(path)
  n = len(rows)
  fig = plt.figure(figsize=(WIDTH_PX / DPI, ROW_HEIGHT_PX * n / DPI), dpi=DPI)
  grid = fig.add_gridspec(2 * n, 1, height_ratios=[2.2, 1.0] * n, hspace=0.55,
                          left=0.07, right=0.98, top=1 - 0.12 / n, bottom=0.04 / n)
  for i, row in enumerate(rows):
    scores = np.asarray(row['pred_saliency_scores'], np.float64)
    times = (np.arange(len(scores)) + 0.5) / video.fps
    windows = row.get('pred_relevant_windows', [])[:top]
    ax = fig.add_subplot(grid[2 * i])
    ax.plot(times, scores, color='tab:blue', marker='.', lw=1.5, label='saliency')
    for rank, (start, end, score) in enumerate(windows):
      colour = _COLOURS[rank % len(_COLOURS)]
      ax.axvspan(start, end, color=colour, alpha=0.25, lw=0)
      ax.text((start + end) / 2, 1.0, f'#{rank + 1} {score:.2f}', color=colour,
              transform=ax.get_xaxis_transform(), ha='center', va='bottom', fontsize=9)
    ax.set_xlim(0, video.duration)
    ax.set_xlabel('time (s)', fontsize=9)
    ax.set_ylabel('saliency', fontsize=9)
    ax.set_title(f'{row.get("query", "")!r}', fontsize=10, pad=14)
    ax.tick_params(labelsize=8)

    strip_ax = fig.add_subplot(grid[2 * i + 1])
    strip_ax.axis('off')
    if windows:
      strip, centres = _thumbnail_strip(video.thumbnails, windows, video.fps)
      strip_ax.imshow(strip)
      for rank, ((start, end, score), x) in enumerate(zip(windows, centres)):
        strip_ax.text(x, strip.shape[0] + 2, f'#{rank + 1}  {start:.0f}-{end:.0f} s', ha='center',
                      va='top', fontsize=8, color=_COLOURS[rank % len(_COLOURS)])
  fig.savefig(path, dpi=DPI)
  plt.close(fig)
  return path
