"""One PNG per video that a newcomer can read without knowing the model.

For each query, one panel of three rows sharing the time axis:
  - the query, one line saying how to read the panel, and a legend of what is drawn;
  - a film strip: one frame per clip (evenly subsampled for long videos), placed at its time;
  - the per-clip match on a 0-1 scale, and the top predicted moments shaded on both rows, each
    labelled with its rank, time span and confidence (0-1).

The match is the model's saliency put on the scale it was trained on: both systems learn it
with an InfoNCE over the clips of a video at temperature τ, so softmax(saliency / τ) over the
clips is the model's belief of where the query is; the plot divides it by its largest value,
exp((s - max s) / τ): 1 is the best-matching clip, 0.5 a clip half as likely. (The raw
saliency, a cosine-like score of about -1 to 1, is meaningful only by its ranking and stays in
the rows.)

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
TEMPERATURE = 0.07   # the saliency InfoNCE temperature of R²-Tuning's and SDST's configs
_COLOURS = ('tab:orange', 'tab:green', 'tab:purple', 'tab:red', 'tab:brown')
_HOW_TO_READ = ('Top: the video over time.  Bottom: how well each clip matches the query '
                '(1 = the best clip).  Shaded: the top moments the model predicts.')


def relative_match(saliency: np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
  """Per-clip saliency -> softmax over the clips at `temperature`, divided by its maximum:
  exp((s - max s) / τ) in (0, 1], 1 at the best-matching clip."""
  saliency = np.asarray(saliency, np.float64)
  if saliency.size == 0:
    return saliency
  return np.exp((saliency - saliency.max()) / temperature)


def _film_strip(thumbnails: np.ndarray, count: int) -> np.ndarray:
  """(H, count·W, 3) uint8: `count` clip frames side by side, the middle clip of each of `count`
  equal stretches of the video (drawn over the whole time axis, frame i stands for stretch i)."""
  count = max(1, min(count, len(thumbnails)))
  clips = ((np.arange(count) + 0.5) * len(thumbnails) / count).astype(int)
  return np.concatenate(list(thumbnails[clips]), axis=1)


def _draw_query(fig: Any, grid: Any, row: dict, video: Any, top: int, temperature: float
                ) -> None:
  """The film strip and the match plot of one query, with its title, legend and top moments."""
  from matplotlib.lines import Line2D
  from matplotlib.patches import Patch
  match = relative_match(row['pred_saliency_scores'], temperature)
  times = (np.arange(len(match)) + 0.5) / video.fps
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
  # From the top: title, how to read the panel, the legend (two lines), the film strip.
  strip_ax.set_title(f'Query: "{query}"', fontsize=12, fontweight='bold', loc='left', pad=46)
  strip_ax.annotate(_HOW_TO_READ, xy=(0, 1), xycoords='axes fraction', xytext=(0, 30),
                    textcoords='offset points', fontsize=8.5, color='0.3', va='bottom')

  ax = fig.add_subplot(grid[1], sharex=strip_ax)
  ax.plot(times, match, color='tab:blue', marker='.', lw=1.6)
  ax.set_ylim(-0.05, 1.12)
  ax.set_yticks([0, 0.5, 1])
  handles = [Line2D([], [], color='tab:blue', marker='.', lw=1.6,
                    label='match per clip (softmax of the saliency, 1 = best clip)')]
  for rank, (start, end, confidence) in enumerate(windows):
    colour = _COLOURS[rank % len(_COLOURS)]
    strip_ax.axvspan(start, end, color=colour, alpha=0.25, lw=0)
    for edge in (start, end):
      strip_ax.axvline(edge, color=colour, lw=2)
    ax.axvspan(start, end, color=colour, alpha=0.3, lw=0)
    ax.text((start + end) / 2, 0.98 - 0.1 * rank, f'#{rank + 1}', color=colour, ha='center',
            va='top', transform=ax.get_xaxis_transform(), fontsize=9, fontweight='bold')
    handles.append(Patch(color=colour, alpha=0.5,
                         label=f'moment #{rank + 1}: {start:.0f}-{end:.0f} s, '
                               f'confidence {confidence:.2f}'))
  if not windows:
    handles.append(Patch(color='none', label='no moment predicted'))
  strip_ax.legend(handles=handles, loc='lower left', bbox_to_anchor=(0, 1.0), ncol=2,
                  fontsize=8, frameon=False, borderaxespad=0.2, handlelength=1.5,
                  columnspacing=1.2)
  ax.set_xlim(0, duration)
  ax.set_xlabel('time in the video (seconds)', fontsize=9)
  ax.set_ylabel('match with the query\n(0-1, 1 = best clip)', fontsize=9)
  ax.tick_params(labelsize=8)


def plot_predictions(rows: Sequence[dict], video: Any, path: str | pathlib.Path,
                     top: int = TOP_WINDOWS, temperature: float = TEMPERATURE) -> pathlib.Path:
  """Writes the PNG of `rows` (predict() output) on `video` (an EncodedVideo); returns its path.
  `temperature`: the one the model's saliency was trained with (`config.loss.temperature`)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  path = pathlib.Path(path)
  n = len(rows)
  height = ROW_HEIGHT_PX * n
  fig = plt.figure(figsize=(WIDTH_PX / DPI, height / DPI), dpi=DPI)
  # Fixed pixel margins: room for each query's title lines above it and the time axis below.
  above, below = 120, 50
  panel = (height - n * (above + below)) / n
  outer = fig.add_gridspec(n, 1, hspace=(above + below) / panel, left=0.1, right=0.98,
                           top=1 - above / height, bottom=below / height)
  for i, row in enumerate(rows):
    grid = outer[i].subgridspec(2, 1, height_ratios=[1.2, 2.0], hspace=0.06)
    _draw_query(fig, grid, row, video, top, temperature)
  fig.savefig(path, dpi=DPI)
  plt.close(fig)
  return path
