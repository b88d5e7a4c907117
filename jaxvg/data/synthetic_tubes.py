"""The embedded synthetic tube benchmark: coloured shapes that appear, move and disappear, in the
HC-STVG schema, with candidate tubes in the LLaVA_Next_STVG proposal format.

Each 20 s video (FPS raw frames per second, WIDTH x HEIGHT, not square) shows 3-4 shapes of
random size. Each shape is visible over its own interval and performs one action (moves left,
right, up or down) over a sub-interval, standing still otherwise. The query names one shape by
colour, shape and action ('the red square that moves left'); distractors share some of these
(same colour, same shape, or the same colour and shape with another action), so only reading all
three words identifies the target. Ground truth: the action's span and the target's box on every
raw frame of it. `reference_rows` scores two references on it: a query-blind 'largest' shape and
an 'oracle' that reads the query; both take the span from the chosen track's motion.

Generated deterministically on first use by `ensure_synthetic_tubes(root, size)` into
`<root>/tubes-<size>-v<VERSION>/`:
  hcstvg_train.json, hcstvg_val.json       HC-STVG v1 schema (1-based st_frame, [x, y, w, h])
  videos/<vid>.mp4                         lossless H.264 (libx264rgb, crf 0)
  dino_sam2_proposals/<vid stem>.json      every shape's track on every PROPOSAL_STRIDE-th frame,
                                           boxes jittered, [0, 0, 0, 0] while invisible
Generation writes to a temporary directory renamed into place, so racing processes are safe.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from jaxvg.data.cache import build_once
from jaxvg.data.stvg_readers import CandidateTubes
from jaxvg.data.tubes import TubeRecord
from jaxvg.postprocess.tubes import tube_row

VERSION = 1
FPS = 5
SECONDS = 20
NUM_FRAMES = FPS * SECONDS
WIDTH, HEIGHT = 160, 120
PROPOSAL_STRIDE = 2        # raw frames between proposal frames (the official G-DINO runs every 10)
PROPOSAL_JITTER = 1.5      # pixels, std of the Gaussian noise on proposal box corners
SIZES = {'default': (400, 100), 'tiny': (8, 6)}   # name -> (train videos, val videos)
COLOURS = {'red': (230, 30, 30), 'green': (30, 200, 40), 'blue': (40, 70, 235),
           'yellow': (245, 220, 20)}
SHAPES = ('circle', 'square', 'triangle')
ACTIONS = {'left': (-1, 0), 'right': (1, 0), 'up': (0, -1), 'down': (0, 1)}
BACKGROUND = (110, 110, 110)
SPEED = 1.5                # pixels per raw frame while moving


@dataclasses.dataclass(frozen=True)
class SyntheticTubePaths:
  root: str
  train_file: str
  val_file: str
  videos_dir: str
  proposals_dir: str


def default_root() -> str:
  cache = os.environ.get('JAXVG_CACHE') or os.path.join(os.path.expanduser('~'), '.cache', 'jaxvg')
  return os.path.join(cache, 'synthetic')


def query_text(obj: dict) -> str:
  return f"the {obj['colour']} {obj['shape']} that moves {obj['action']}"


def object_boxes(obj: dict) -> tuple[np.ndarray, np.ndarray]:
  """(NUM_FRAMES, 4) xyxy box of the shape on every raw frame and (NUM_FRAMES,) visibility."""
  t = np.arange(NUM_FRAMES)
  moved = np.clip(t - obj['act_start'], 0, obj['act_end'] - obj['act_start'])
  dx, dy = ACTIONS[obj['action']]
  cx = obj['x'] + dx * SPEED * moved
  cy = obj['y'] + dy * SPEED * moved
  r = obj['radius']
  boxes = np.stack([cx - r, cy - r, cx + r, cy + r], axis=1)
  visible = (t >= obj['visible'][0]) & (t < obj['visible'][1])
  return boxes, visible


_PIXEL_CENTRES = np.mgrid[0:HEIGHT, 0:WIDTH] + 0.5   # (y, x) of every pixel's centre


def draw(frame: np.ndarray, obj: dict, box: np.ndarray) -> None:
  """Paints the object's shape in its xyxy `box` onto a (HEIGHT, WIDTH, 3) frame, in place."""
  yy, xx = _PIXEL_CENTRES
  x1, y1, x2, y2 = box
  cx, cy, r = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2
  inside = (xx >= x1) & (xx < x2) & (yy >= y1) & (yy < y2)
  if obj['shape'] == 'circle':
    inside &= (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
  elif obj['shape'] == 'triangle':
    inside &= np.abs(xx - cx) <= (yy - y1) / 2
  frame[inside] = COLOURS[obj['colour']]


def render(objects: list[dict]) -> np.ndarray:
  """(NUM_FRAMES, HEIGHT, WIDTH, 3) uint8; later objects are drawn over earlier ones."""
  frames = np.empty((NUM_FRAMES, HEIGHT, WIDTH, 3), np.uint8)
  frames[:] = BACKGROUND
  for obj in objects:
    boxes, visible = object_boxes(obj)
    for t in np.flatnonzero(visible):
      draw(frames[t], obj, boxes[t])
  return frames


def start_point(rng: np.random.Generator, radius: float, action: str, frames: int
                ) -> tuple[float, float]:
  """A random centre from which a shape moving `action` for `frames` raw frames stays inside
  the frame."""
  travel = SPEED * frames
  dx, dy = ACTIONS[action]
  lo_x, hi_x = radius - min(dx, 0) * travel, WIDTH - radius - max(dx, 0) * travel
  lo_y, hi_y = radius - min(dy, 0) * travel, HEIGHT - radius - max(dy, 0) * travel
  return float(rng.uniform(lo_x, max(lo_x, hi_x))), float(rng.uniform(lo_y, max(lo_y, hi_y)))


def _objects(rng: np.random.Generator) -> tuple[list[dict], int]:
  """3-4 shapes and the index of the target; distractors share some of its attributes."""
  colour, shape, action = (str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)),
                           str(rng.choice(list(ACTIONS))))
  attributes = [(colour, shape, action)]
  while len(attributes) < int(rng.integers(3, 5)):
    keep = rng.random(3) < 0.5    # which attributes the distractor shares with the target
    candidate = (colour if keep[0] else str(rng.choice(list(COLOURS))),
                 shape if keep[1] else str(rng.choice(SHAPES)),
                 action if keep[2] else str(rng.choice(list(ACTIONS))))
    if candidate not in attributes:
      attributes.append(candidate)
  objects = []
  for colour, shape, action in attributes:
    radius = float(rng.integers(6, 17))
    appear = int(rng.integers(0, NUM_FRAMES // 3))
    disappear = int(rng.integers(2 * NUM_FRAMES // 3, NUM_FRAMES + 1))
    act_start = int(rng.integers(appear, appear + (disappear - appear) // 2))
    act_end = int(rng.integers(act_start + 8, min(disappear, act_start + 30) + 1))
    x, y = start_point(rng, radius, action, act_end - act_start)
    objects.append({'colour': colour, 'shape': shape, 'action': action, 'radius': radius,
                    'x': x, 'y': y,
                    'visible': [appear, disappear], 'act_start': act_start, 'act_end': act_end})
  order = rng.permutation(len(objects))   # drawing order: the target is not always on top
  return [objects[i] for i in order], int(np.flatnonzero(order == 0)[0])


def hcstvg_entry(obj: dict) -> dict:
  """The HC-STVG v1 annotation of the object's action (1-based st_frame, integer xywh)."""
  boxes, _ = object_boxes(obj)
  start, end = obj['act_start'], obj['act_end']
  xywh = [[round(x1), round(y1), round(x2 - x1), round(y2 - y1)]
          for x1, y1, x2, y2 in boxes[start:end]]
  return {'bbox': xywh, 'st_frame': start + 1, 'st_time': start / FPS, 'ed_time': end / FPS,
          'img_num': NUM_FRAMES, 'caption': query_text(obj), 'width': WIDTH, 'height': HEIGHT}


def _box_rle(box: np.ndarray) -> dict:
  """Uncompressed COCO RLE (column-major runs starting with zeros) of a box's pixels."""
  x1, y1, x2, y2 = (int(round(v)) for v in np.clip(box, 0, [WIDTH, HEIGHT, WIDTH, HEIGHT]))
  if x2 <= x1 or y2 <= y1:
    return {'size': [HEIGHT, WIDTH], 'counts': [HEIGHT * WIDTH]}
  counts = [x1 * HEIGHT + y1]
  for _ in range(x1, x2 - 1):
    counts += [y2 - y1, HEIGHT - (y2 - y1)]
  counts += [y2 - y1, (WIDTH - x2) * HEIGHT + HEIGHT - y2]
  return {'size': [HEIGHT, WIDTH], 'counts': counts}


def proposals(rng: np.random.Generator, objects: list[dict]) -> dict:
  """Every object's track in the LLaVA_Next_STVG proposal format, with box jitter."""
  frame_ids = np.arange(0, NUM_FRAMES, PROPOSAL_STRIDE)
  tracks = []
  for k, obj in enumerate(objects):
    boxes, visible = object_boxes(obj)
    noisy = boxes[frame_ids] + rng.normal(0, PROPOSAL_JITTER, (len(frame_ids), 4))
    noisy = np.where(visible[frame_ids, None], noisy.clip(0, [WIDTH, HEIGHT] * 2), 0.0)
    tracks.append({'track_id': k, 'bboxes': [[b] for b in np.round(noisy, 2).tolist()],
                   'rles': [_box_rle(b) for b in noisy],
                   'class_name': f"{obj['colour']} {obj['shape']}", 'box_format': 'xyxy',
                   'img_width': WIDTH, 'img_height': HEIGHT})
  return {'sample_frames': [f'{f:05d}.jpg' for f in frame_ids], 'dino_sam2_proposals': tracks}


def write_video(path: str, frames: np.ndarray, fps: int = FPS) -> None:
  """Lossless H.264 RGB (libx264rgb, crf 0), so decoded pixels equal the rendered ones."""
  import av
  with av.open(path, 'w') as container:
    stream = container.add_stream('libx264rgb', rate=fps, options={'crf': '0',
                                                                   'preset': 'ultrafast'})
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], 'rgb24'
    for frame in frames:
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
    container.mux(stream.encode())


def _generate(rng: np.random.Generator, split: str, count: int, out: str) -> dict:
  annotations = {}
  for k in range(count):
    objects, target = _objects(rng)
    vid = f'synth_{split}_{k:05d}.mp4'
    stem = vid[:-4]
    write_video(os.path.join(out, 'videos', vid), render(objects))
    with open(os.path.join(out, 'dino_sam2_proposals', f'{stem}.json'), 'w') as f:
      json.dump(proposals(rng, objects), f)
    annotations[vid] = hcstvg_entry(objects[target])
  return annotations


def ensure_synthetic_tubes(root: str = '', size: str = 'default') -> SyntheticTubePaths:
  """Generates the benchmark under `root` if missing; returns its paths."""
  if size not in SIZES:
    raise ValueError(f'unknown synthetic tube size {size!r}; one of {sorted(SIZES)}')
  root = root or default_root()
  final = os.path.join(root, f'tubes-{size}-v{VERSION}')
  paths = SyntheticTubePaths(final, os.path.join(final, 'hcstvg_train.json'),
                             os.path.join(final, 'hcstvg_val.json'),
                             os.path.join(final, 'videos'),
                             os.path.join(final, 'dino_sam2_proposals'))

  def build(tmp: str) -> None:
    os.makedirs(os.path.join(tmp, 'videos'))
    os.makedirs(os.path.join(tmp, 'dino_sam2_proposals'))
    num_train, num_val = SIZES[size]
    rng = np.random.default_rng([VERSION, num_train, num_val, 7])
    for split, count in (('train', num_train), ('val', num_val)):
      with open(os.path.join(tmp, f'hcstvg_{split}.json'), 'w') as f:
        json.dump(_generate(rng, split, count, tmp), f)

  build_once(final, os.path.basename(paths.val_file), build)
  return paths


# ---------------------------------------------------------------------------------------------
# Reference predictors (floor and ceiling of what reading the query is worth).

MOVE_THRESHOLD = 3.0   # pixels of centre displacement over two proposal strides = "moving"


def _parse_query(query: str) -> tuple[str, str]:
  words = query.split()   # 'the <colour> <shape> that moves <action>'
  return f'{words[1]} {words[2]}', words[-1]


def _motion(boxes: np.ndarray, visible: np.ndarray) -> np.ndarray:
  """(F, 2) centre displacement between the neighbours of each proposal frame (0 where a
  neighbour is not visible)."""
  centres = (boxes[:, :2] + boxes[:, 2:]) / 2
  padded = np.concatenate([centres[:1], centres, centres[-1:]])
  shown = np.concatenate([visible[:1], visible, visible[-1:]])
  both = (shown[2:] & shown[:-2])[:, None]
  return np.where(both, padded[2:] - padded[:-2], 0.0)


def _longest_run(flags: np.ndarray) -> tuple[int, int] | None:
  """First and last index of the longest run of True, or None."""
  edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
  if not len(edges):
    return None
  starts, ends = edges[0::2], edges[1::2]
  k = int(np.argmax(ends - starts))
  return int(starts[k]), int(ends[k]) - 1


def reference_rows(records: list[TubeRecord], candidates: dict[str, CandidateTubes],
                   select: str) -> list[dict]:
  """Submission rows of a reference predictor over the candidate tubes.

  select: 'largest' picks the track of largest mean visible box area (query-blind); 'oracle'
  picks the track whose class matches the query's colour and shape and that moves in the query's
  direction most. The span is where the chosen track moves (by MOVE_THRESHOLD) in the direction
  it moves most ('largest') or in the query's direction ('oracle'): the longest run of proposal
  frames whose neighbours' centres are MOVE_THRESHOLD pixels apart in that direction.
  """
  if select not in ('largest', 'oracle'):
    raise ValueError(f"select must be 'largest' or 'oracle', got {select!r}")
  rows = []
  for record in records:
    tubes = candidates[record.video_key]
    visible = np.any(tubes.boxes > 0, axis=-1)                              # (P, F)
    motions = np.stack([_motion(b, v) for b, v in zip(tubes.boxes, visible)])  # (P, F, 2)
    directions = np.array(list(ACTIONS.values()), np.float64)               # (A, 2)
    along = np.einsum('pfc,ac->paf', motions, directions)
    if select == 'largest':
      area = np.prod(tubes.boxes[..., 2:] - tubes.boxes[..., :2], axis=-1)
      track = int(np.argmax((area * visible).sum(1) / np.maximum(visible.sum(1), 1)))
      direction = int(np.argmax(along[track].clip(0).sum(-1)))
    else:
      name, action = _parse_query(record.query)
      direction = list(ACTIONS).index(action)
      score = np.where([c == name for c in tubes.class_names],
                       along[:, direction].clip(0).sum(-1), -np.inf)
      track = int(np.argmax(score))
    shown = np.flatnonzero(visible[track])
    first, last = (_longest_run(along[track, direction] > MOVE_THRESHOLD)
                   or (shown[0], shown[-1]))
    rows.append(tube_row(record.qid, (tubes.frame_ids[first], tubes.frame_ids[last]),
                         tubes.frame_ids[shown], tubes.boxes[track, shown], record.convention))
  return rows


REFERENCES = {'largest': 'query-blind largest shape', 'oracle': 'oracle reading the query'}


def reference_scores(records: list[TubeRecord], root: str) -> dict[str, dict[str, float]]:
  """{reference description: HC-STVG metrics} of both references on `records`, over the
  benchmark's candidate tubes under `root` (what a trained model is measured against)."""
  from jaxvg import evaluation
  from jaxvg.data.stvg_readers import proposals_path, read_proposals
  candidates = {r.video_key: read_proposals(proposals_path(root, r.vid)) for r in records}
  ground_truth = [r.to_json() for r in records]
  return {name: {k: float(v) for k, v in evaluation.evaluate(
              'hcstvg', reference_rows(records, candidates, select), ground_truth)['brief'].items()}
          for select, name in REFERENCES.items()}
