"""The embedded synthetic benchmark: coloured shapes with events, in the QVHighlights schema.

Each video (16-32 clips at 0.5 fps by default) shows three large saturated shapes on a plain
background, each named by a distinct colour and shape; 2-3 of them carry an event, each over its
own window of clips:
  appear ('a green triangle appears'), move left/right ('the red circle moves to the left'),
  change colour ('the blue square turns yellow'), grow ('the yellow circle grows').
Every event is one query with its window and per-clip saliency scores (0-4) from three simulated
annotators, so the official QVHighlights evaluator (MR and HD metrics) applies unchanged.

Several queries per video, about different shapes at different times, are what make the query
necessary: a model that ignores it can at best find *an* event of the video, and scores about
1/2-1/3 of a model that reads it (`jaxvg.evaluation.swapped` measures exactly this).

Frames go through the real frames path: rendered one per clip and written with
`jaxvg.data.frames.write_video` (JPEG ArrayRecord), read back by `FrameReader`.

Generated deterministically on first use by `ensure_synthetic(root, size)` into
`<root>/<size>-v<VERSION>/` (default root: $JAXVG_CACHE/synthetic or ~/.cache/jaxvg/synthetic):
  synthetic_train.jsonl, synthetic_val.jsonl, frames/ (a frames directory).
Generation writes to a temporary directory renamed into place, so racing processes are safe.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from jaxvg.data import frames as frames_lib
from jaxvg.data.cache import build_once

VERSION = 3
FPS = 0.5
SIZE = 224
SIZES = {  # name -> (train queries, val queries, (min clips, max clips))
    'default': (600, 150, (16, 32)),
    'tiny': (24, 9, (8, 8)),
}
EVENTS_PER_VIDEO = (2, 3)       # queries per video, drawn uniformly
COLOURS = {'red': (230, 30, 30), 'green': (30, 200, 40), 'blue': (40, 70, 235),
           'yellow': (245, 220, 20)}
SHAPES = ('circle', 'square', 'triangle')
EVENTS = ('appear', 'move_left', 'move_right', 'change_colour', 'grow')
BACKGROUND = (110, 110, 110)
ROWS = (48, 112, 176)   # one shape per row: never overlapping
RADIUS, GROWN = 26, 44


@dataclasses.dataclass(frozen=True)
class SyntheticPaths:
  """Where a generated synthetic benchmark lives."""
  anno_dir: str
  train_file: str
  val_file: str
  frames_dir: str
  fps: float = FPS


def default_root() -> str:
  cache = os.environ.get('JAXVG_CACHE') or os.path.join(os.path.expanduser('~'), '.cache',
                                                         'jaxvg')
  return os.path.join(cache, 'synthetic')


_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def _shape_mask(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
  yy, xx = _YY, _XX
  if shape == 'circle':
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
  if shape == 'square':
    return (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
  return (yy >= cy - r) & (yy <= cy + r) & (np.abs(xx - cx) <= (yy - (cy - r)) / 2)


def _progress(t: int, start: int, end: int) -> float:
  """0 before the window, 1 after, linear inside (evaluated at the clip's middle)."""
  return float(np.clip((t + 0.5 - start) / (end - start), 0, 1))


def render(objects: list[dict], num_clips: int) -> np.ndarray:
  """(T, 224, 224, 3) uint8 frames of the objects with their events."""
  out = np.empty((num_clips, SIZE, SIZE, 3), np.uint8)
  for t in range(num_clips):
    frame = np.empty((SIZE, SIZE, 3), np.uint8)
    frame[:] = BACKGROUND
    for obj in objects:
      x, r, colour, visible = obj['x'], obj.get('r', RADIUS), obj['colour'], True
      event = obj.get('event')
      if event:
        start, end, kind = event['start'], event['end'], event['kind']
        inside = start <= t < end
        if kind == 'appear':
          visible = inside
        elif kind in ('move_left', 'move_right'):
          x = obj['x'] + (event['x_to'] - obj['x']) * _progress(t, start, end)
        elif kind == 'change_colour' and inside:
          colour = event['colour_to']
        elif kind == 'grow' and inside:
          r = GROWN
      if visible:
        frame[_shape_mask(obj['shape'], x, obj['y'], r)] = COLOURS[colour]
    out[t] = frame
  return out


def random_scene(rng: np.random.Generator) -> list[dict]:
  """1-3 static objects (one per row) in random colours, shapes, places and sizes: one still
  frame of the kind the videos show, for pretraining a CLIP on (frame, caption) pairs."""
  count = int(rng.integers(1, len(ROWS) + 1))
  rows = np.sort(rng.permutation(len(ROWS))[:count])
  names = rng.permutation([(c, s) for c in COLOURS for s in SHAPES])[:count]
  return [{'colour': str(colour), 'shape': str(shape), 'y': ROWS[row],
           'x': float(rng.uniform(54.0, 170.0)),
           'r': float(GROWN if rng.random() < 0.3 else RADIUS)}
          for row, (colour, shape) in zip(rows, names)]


def caption(objects: list[dict]) -> str:
  """What a still frame of static `objects` shows, top row first:
  'big red circle left, blue square middle' (the words the queries use for colour, shape,
  size and side)."""
  def side(x: float) -> str:
    return 'left' if x < 93 else 'right' if x > 131 else 'middle'
  parts = [f"{'big ' if obj.get('r', RADIUS) > RADIUS else ''}{obj['colour']} {obj['shape']} "
           f"{side(obj['x'])}" for obj in sorted(objects, key=lambda o: o['y'])]
  return ', '.join(parts)


def _query(obj: dict) -> str:
  name = f"{obj['colour']} {obj['shape']}"
  kind = obj['event']['kind']
  if kind == 'appear':
    return f'a {name} appears'
  if kind == 'move_left':
    return f'the {name} moves to the left'
  if kind == 'move_right':
    return f'the {name} moves to the right'
  if kind == 'change_colour':
    return f"the {name} turns {obj['event']['colour_to']}"
  return f'the {name} grows'


def _video(rng: np.random.Generator, num_clips: int, num_events: int) -> list[dict]:
  """The three objects of one video; the first `num_events` carry events in disjoint windows.

  The objects differ in colour and in shape, so either word of a query's name picks its object
  (with shared colours, a tiny CLIP that sees colour far better than shape could not tell 'the
  red circle' from 'the red square').

  The timeline is cut into `num_events` equal parts and each event falls inside its own part, so
  the queries of one video ask about different times; which object (row, colour, shape) has the
  event of each part is random, so only the query's words tell the parts apart.
  """
  rows = rng.permutation(len(ROWS))
  colours = rng.permutation(list(COLOURS))[:len(ROWS)]
  shapes = rng.permutation(SHAPES)[:len(ROWS)]
  names = list(zip(colours, shapes))
  cuts = np.linspace(0, num_clips, num_events + 1).astype(int)
  objects = []
  for i, (row, (colour, shape)) in enumerate(zip(rows, names)):
    obj = {'colour': str(colour), 'shape': str(shape), 'y': ROWS[row], 'x': 112.0}
    if i < num_events:
      lo, hi = int(cuts[i]), int(cuts[i + 1])
      part = hi - lo
      length = min(part, int(rng.integers(max(2, part // 4), max(3, part * 2 // 3) + 1)))
      start = int(rng.integers(lo, hi - length + 1))
      kind = str(rng.choice(EVENTS))
      event = {'kind': kind, 'start': start, 'end': start + length}
      if kind == 'move_left':
        obj['x'], event['x_to'] = 170.0, 54.0
      elif kind == 'move_right':
        obj['x'], event['x_to'] = 54.0, 170.0
      elif kind == 'change_colour':
        event['colour_to'] = str(rng.choice([c for c in COLOURS if c != colour]))
      obj['event'] = event
    else:
      obj['x'] = float(rng.choice([54.0, 112.0, 170.0]))
    objects.append(obj)
  return objects


def _saliency(rng: np.random.Generator, start: int, end: int) -> list[list[int]]:
  """Scores 0-4 of three annotators on the event's clips (highest in the middle)."""
  length = end - start
  scores = []
  for t in range(start, end):
    middle = 1 - abs((t + 0.5 - start) / length - 0.5) * 2   # 1 at the centre, 0 at the edges
    base = 2 + 2 * middle
    scores.append([int(np.clip(round(base + rng.normal(0, 0.6)), 0, 4)) for _ in range(3)])
  return scores


def generate_split(rng: np.random.Generator, split: str, num_queries: int,
                   clip_range: tuple[int, int], frames_dir: str, first_qid: int) -> list[dict]:
  """Renders videos until `num_queries` queries exist; returns the QVH-schema rows."""
  rows, k = [], 0
  while len(rows) < num_queries:
    num_clips = int(rng.integers(clip_range[0], clip_range[1] + 1))
    num_events = int(min(rng.choice(EVENTS_PER_VIDEO), num_queries - len(rows)))
    objects = _video(rng, num_clips, num_events)
    vid = f'synth_{split}_{k:05d}'
    frames_lib.write_video(frames_dir, vid, render(objects, num_clips), FPS, 'jpeg')
    for obj in objects[:num_events]:
      start, end = obj['event']['start'], obj['event']['end']
      rows.append({
          'qid': first_qid + len(rows), 'query': _query(obj), 'duration': num_clips / FPS,
          'vid': vid, 'relevant_windows': [[start / FPS, end / FPS]],
          'relevant_clip_ids': list(range(start, end)),
          'saliency_scores': _saliency(rng, start, end)})
    k += 1
  return rows


def ensure_synthetic(root: str = '', size: str = 'default') -> SyntheticPaths:
  """Generates the synthetic benchmark under `root` if missing; returns its paths."""
  if size not in SIZES:
    raise ValueError(f'unknown synthetic size {size!r}; one of {sorted(SIZES)}')
  root = root or default_root()
  final = os.path.join(root, f'{size}-v{VERSION}')
  paths = SyntheticPaths(final, os.path.join(final, 'synthetic_train.jsonl'),
                         os.path.join(final, 'synthetic_val.jsonl'),
                         os.path.join(final, 'frames'))

  def build(tmp: str) -> None:
    num_train, num_val, clip_range = SIZES[size]
    rng = np.random.default_rng([VERSION, num_train, num_val])
    frames_dir = os.path.join(tmp, 'frames')
    splits = {'train': generate_split(rng, 'train', num_train, clip_range, frames_dir, 0)}
    splits['val'] = generate_split(rng, 'val', num_val, clip_range, frames_dir, num_train)
    frames_lib.build_index(frames_dir)
    for split, rows in splits.items():
      with open(os.path.join(tmp, f'synthetic_{split}.jsonl'), 'w') as f:
        f.writelines(json.dumps(row) + '\n' for row in rows)

  build_once(final, os.path.basename(paths.val_file), build)
  return paths


def paths_for(config) -> SyntheticPaths:
  """The benchmark a config names (`data.synthetic_root`, `data.synthetic_size`), generated on
  first use."""
  return ensure_synthetic(config.data.get('synthetic_root', '') or default_root(),
                          config.data.get('synthetic_size', 'default'))


def chance_metrics(rows: list[dict], fps: float = FPS,
                   thresholds: tuple[float, ...] = (0.3, 0.5, 0.7)) -> dict[str, float]:
  """Expected R1@θ (%) and mIoU (%) of a predictor drawing a clip-aligned window uniformly.

  Exact: every window [s, e) with 0 <= s < e <= T clips is equally likely.
  """
  hits = {t: 0.0 for t in thresholds}
  miou = 0.0
  for row in rows:
    num_clips = int(round(row['duration'] * fps))
    s, e = np.triu_indices(num_clips + 1, 1)
    best = np.zeros(s.shape[0])
    for gs, ge in np.asarray(row['relevant_windows'], np.float64) * fps:
      inter = np.clip(np.minimum(e, ge) - np.maximum(s, gs), 0, None)
      best = np.maximum(best, inter / (np.maximum(e, ge) - np.minimum(s, gs)))
    for t in thresholds:
      hits[t] += float(np.mean(best >= t))
    miou += float(best.mean())
  n = max(len(rows), 1)
  out = {f'R1@{t}': 100 * hits[t] / n for t in thresholds}
  out['mIoU'] = 100 * miou / n
  return out
