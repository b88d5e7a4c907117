"""One PNG per video that a newcomer can read without knowing the model.

For each query, one panel of three rows sharing the time axis:
  - the query, and one line saying how to read the panel;
  - a film strip: one frame per clip (evenly subsampled for long videos), placed at its time;
  - the per-clip match score (the model's saliency: σ(clip confidence) × cosine(clip, query),
    so about -1 to 1, higher = the clip matches the query better; only the ranking matters),
    with a zero line, and the top predicted moments shaded on both rows, each labelled with
    its rank, time span and confidence (0-1).

Matplotlib runs on the Agg backend (no display needed); the figure size is fixed, so the PNG is
WIDTH_PX wide and ROW_HEIGHT_PX high per query.
"""
from __future__ import annotations

import pathlib
import textwrap
from typing import Any, Sequence

import numpy as np

DPI = 100
WIDTH_PX = 1000
ROW_HEIGHT_PX = 420
TOP_WINDOWS = 3
_COLOURS = ('tab:orange', 'tab:green', 'tab:purple', 'tab:red', 'tab:brown')
_HOW_TO_READ = ('Top: the video over time.  Bottom: how well each clip matches the query '
                '(higher = better).  Shaded: the top moments the model predicts.')


def _film_strip(thumbnails: np.ndarray, count: int) -> np.ndarray:
  """(H, count·W, 3) uint8: `count` clip frames side by side, the middle clip of each of `count`
  equal stretches of the video (drawn over the whole time axis, frame i stands for stretch i)."""
  count = max(1, min(count, len(thumbnails)))
  clips = ((np.arange(count) + 0.5) * len(thumbnails) / count).astype(int)
  return np.concatenate(list(thumbnails[clips]), axis=1)


def _draw_query(fig: Any, grid: Any, row: dict, video: Any, top: int) -> None:
  """The film strip and the score plot of one query, with its title and the top moments."""
  scores = np.asarray(row['pred_saliency_scores'], np.float64)
  times = (np.arange(len(scores)) + 0.5) / video.fps
  windows = row.get('pred_relevant_windows', [])[:top]
  duration = float(video.duration)

  strip_ax = fig.add_subplot(grid[0])
  box = strip_ax.get_position()
  aspect = (box.width * fig.get_figwidth()) / (box.height * fig.get_figheight())
  strip_ax.imshow(_film_strip(video.thumbnails, round(aspect)), extent=(0, duration, 0, 1),
                  aspect='auto', interpolation='bilinear')
  strip_ax.set_xlim(0, duration)
  strip_ax.set_yticks([])
  strip_ax.tick_params(labelbottom=False, labelsize=8)
  strip_ax.set_ylabel('video', fontsize=9)
  query = textwrap.shorten(str(row.get('query', '')), 100)
  strip_ax.set_title(f'Query: "{query}"', fontsize=12, fontweight='bold', loc='left', pad=34)
  strip_ax.text(0, 1.2, _HOW_TO_READ, transform=strip_ax.transAxes, fontsize=8.5, color='0.3',
                va='bottom')
  legend = [('Top moments:', '0.2')] + [
      (f'#{rank + 1} {start:.0f}-{end:.0f} s (confidence {confidence:.2f})',
       _COLOURS[rank % len(_COLOURS)]) for rank, (start, end, confidence) in enumerate(windows)]
  x = 0.0
  for text, colour in legend if windows else [('No moment predicted.', '0.2')]:
    strip_ax.text(x, 1.04, text, transform=strip_ax.transAxes, fontsize=9,
                  color=colour, fontweight='bold', va='bottom')
    x += 0.0085 * len(text) + 0.02

  ax = fig.add_subplot(grid[1], sharex=strip_ax)
  ax.axhline(0, color='0.6', lw=0.8)
  ax.plot(times, scores, color='tab:blue', marker='.', lw=1.6)
  low, high = min(scores.min(initial=0.0), 0.0), max(scores.max(initial=0.0), 0.0)
  pad = 0.15 * (high - low) or 0.1
  ax.set_ylim(low - pad, high + pad)
  for rank, (start, end, _) in enumerate(windows):
    colour = _COLOURS[rank % len(_COLOURS)]
    strip_ax.axvspan(start, end, color=colour, alpha=0.25, lw=0)
    for edge in (start, end):
      strip_ax.axvline(edge, color=colour, lw=2)
    ax.axvspan(start, end, color=colour, alpha=0.3, lw=0)
    ax.text((start + end) / 2, 0.98 - 0.1 * rank, f'#{rank + 1}', color=colour, ha='center',
            va='top', transform=ax.get_xaxis_transform(), fontsize=9, fontweight='bold')
  ax.set_xlim(0, duration)
  ax.set_xlabel('time in the video (seconds)', fontsize=9)
  ax.set_ylabel('match score per clip\n(higher = better)', fontsize=9)
  if scores.max(initial=0.0) <= 0:
    ax.text(0.01, 0.04, 'No clip scores above 0: nothing in the video clearly matches the query.',
            transform=ax.transAxes, fontsize=8.5, color='0.3', va='bottom')
  ax.tick_params(labelsize=8)


def plot_predictions(rows: Sequence[dict], video: Any, path: str | pathlib.Path,
                     top: int = TOP_WINDOWS) -> pathlib.Path:
  """Writes the PNG of `rows` (predict() output) on `video` (an EncodedVideo); returns its path."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  path = pathlib.Path(path)
  n = len(rows)
  height = ROW_HEIGHT_PX * n
  fig = plt.figure(figsize=(WIDTH_PX / DPI, height / DPI), dpi=DPI)
  # Fixed pixel margins: room for each query's title lines above it and the time axis below.
  above, below = 100, 50
  panel = (height - n * (above + below)) / n
  outer = fig.add_gridspec(n, 1, hspace=(above + below) / panel, left=0.1, right=0.98,
                           top=1 - above / height, bottom=below / height)
  for i, row in enumerate(rows):
    grid = outer[i].subgridspec(2, 1, height_ratios=[1.2, 2.0], hspace=0.06)
    _draw_query(fig, grid, row, video, top)
  fig.savefig(path, dpi=DPI)
  plt.close(fig)
  return path
