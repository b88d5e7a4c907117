"""CG-STVG's frozen features cached per video (`python -m jaxvg.prepare features cgstvg`), read
in place of frames by the tube pipeline.

  <features_dir>/index.json          the frames index entries of the cached videos (num_frames,
                                     raw frame_ids, fps, height, width: `FrameReader` format)
  <features_dir>/cgstvg_c5/<key>.npy    (T, h, w, 2048) float16  ResNet C5 of every stored frame
  <features_dir>/cgstvg_swin/<key>.npy  (T, h, w, 768) float16   Video-Swin stage 4 (Swin branch)
  <features_dir>/cgstvg_swin_halves/<key>.npy   the same, the tower run on the even and on the odd
                                     frames apart (`data.test_halves`: what the official test's
                                     two clips see), rows in stored order
  <features_dir>/cgstvg_text/<sha1>.npy (n, 768) float16  RoBERTa's last hidden states of one
                                     query's n token ids (`text_key`), written when the config
                                     freezes the text tower (`model.text.frozen`)
  <features_dir>/failures.json       videos that could not be encoded, with the error

T and the order are those of the frames directory the cache was made from; h, w = ceil(H/32),
ceil(W/32) of the video's own frame size (each video encoded alone and unpadded, as the official
runs one video at a time). The Swin map of a frame depends on its temporal neighbours (windows of
8 frames): the cache holds it for the video's whole stored clip, which is what a sample sees when
it keeps every stored frame in order (evaluation), and with `data.test_halves` for each half run
alone (`cgstvg_swin_halves`, what the official test's even and odd clips see); a temporally
cropped or subsampled training sample sees the same features, where the official would re-run
the tower on the shorter clip.

`CachedTubeData` is `TubeData` with the cache as its frame source: the same sampling, crop and
text, then the rows of the kept frames, padded to the canvas grid with `grid_mask`, and the
query's text states when the text tower is frozen. Map files are memory-mapped, so only the kept
rows are read. The maps are those of the stored frames: training from the cache cannot flip or
resize them (`data.flip_prob` and `data.train_scales` must be off).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np

from jaxvg.data.frames import INDEX_FILE
from jaxvg.data.tube_examples import FRAME_KEYS, TubeData
from jaxvg.data.tubes import TubeRecord
from jaxvg.errors import UserError

MAPS = {'c5': 'cgstvg_c5', 'swin': 'cgstvg_swin', 'swin_halves': 'cgstvg_swin_halves'}
TEXT_DIR = 'cgstvg_text'
FAILURES_FILE = 'failures.json'


def text_key(tokens: np.ndarray) -> str:
  """The cache key of a query's token ids (the frozen tower's states are a function of them,
  so a flipped query, with left and right swapped, has its own)."""
  return hashlib.sha1(np.asarray(tokens, np.int32).tobytes()).hexdigest()


class TextStateCache:
  """The frozen RoBERTa's last hidden states of each query, `<path>/cgstvg_text/<text_key>.npy`
  (n_tokens, hidden) float16. Picklable."""

  def __init__(self, path: str):
    self.path = os.path.join(path, TEXT_DIR)

  def states(self, tokens: np.ndarray) -> np.ndarray:
    path = os.path.join(self.path, f'{text_key(tokens)}.npy')
    if not os.path.exists(path):
      raise ValueError(f'{path}: no cached text states for the token ids '
                       f'{np.asarray(tokens).tolist()} (write them with `python -m jaxvg.prepare '
                       'features cgstvg` and model.text.frozen set, with the same data.tokenizer)')
    states = np.load(path)
    if states.ndim != 2 or len(states) != len(tokens):
      raise ValueError(f'text state file {path!r} has shape {states.shape}; expected '
                       f'({len(tokens)}, hidden)')
    return states


class TubeFeatureCache:
  """The cache as the tube pipeline's frame source: `read(key)` gives the stored positions
  (0..T-1), whose kept subset `rows(key, positions)` turns into feature rows. Picklable.

  `maps`: the batch's map names, each read from the `MAPS` entry of the same name, or a mapping
  {batch name: `MAPS` entry} (the test's halves read `swin` from 'swin_halves')."""

  def __init__(self, path: str, maps: Sequence[str] | Mapping[str, str] = ('c5', 'swin')):
    self.sources = dict(maps) if isinstance(maps, Mapping) else {name: name for name in maps}
    self.path, self.maps = path, tuple(self.sources)
    index_path = os.path.join(path, INDEX_FILE)
    if not os.path.exists(index_path):
      raise FileNotFoundError(f'{path!r} is not a CG-STVG feature cache (no {INDEX_FILE}; '
                              'write it with `python -m jaxvg.prepare features cgstvg`)')
    with open(index_path) as f:
      self._index = json.load(f)

  def keys(self) -> list[str]:
    return list(self._index)

  def _meta(self, key: str) -> dict:
    if key not in self._index:
      raise KeyError(f'video {key!r} not in feature cache {self.path!r}')
    return self._index[key]

  def num_frames(self, key: str) -> int:
    return int(self._meta(key)['num_frames'])

  def frame_ids(self, key: str) -> np.ndarray | None:
    ids = self._meta(key).get('frame_ids')
    return None if ids is None else np.asarray(ids, np.int64)

  def read(self, key: str) -> np.ndarray:
    """(T,) stored positions: what the example keeps of them selects the feature rows."""
    return np.arange(self.num_frames(key))

  def rows(self, key: str, positions: np.ndarray) -> dict[str, np.ndarray]:
    """{'c5': (n, h, w, 2048), 'swin': (n, h, w, 768)} rows of the stored `positions`."""
    out = {}
    for name, source in self.sources.items():
      path = os.path.join(self.path, MAPS[source], f'{key}.npy')
      try:
        array = np.load(path, mmap_mode='r')
      except (FileNotFoundError, ValueError) as e:
        raise ValueError(f'feature file {path!r}: {e}') from None
      if array.ndim != 4 or len(array) != self.num_frames(key):
        raise ValueError(f'feature file {path!r} has shape {array.shape}; expected '
                         f'({self.num_frames(key)}, h, w, C)')
      out[name] = np.asarray(array[positions])
    return out


def collate_maps(examples: Sequence[dict | None], frames: int, grid: tuple[int, int],
                 maps: Sequence[str]) -> dict[str, np.ndarray]:
  """The maps of the examples padded to (B, frames, *grid, C) float16, top-left, with the valid
  cells `grid_mask` (B, *grid)."""
  real = [e for e in examples if e is not None]
  batch = {'grid_mask': np.zeros((len(examples),) + grid, bool)}
  for name in maps:
    dims = real[0][name].shape[-1] if real else 1
    batch[name] = np.zeros((len(examples), frames) + grid + (dims,), np.float16)
  for i, e in enumerate(examples):
    if e is None:
      continue
    n, h, w = e[maps[0]].shape[:3]
    if h > grid[0] or w > grid[1]:
      raise ValueError(f"{e['qid']!r}: a {h}x{w} feature grid exceeds the canvas grid {grid}")
    batch['grid_mask'][i, :h, :w] = True
    for name in maps:
      batch[name][i, :n, :h, :w] = e[name]
  return batch


def collate_text_states(rows: Sequence[dict | None], length: int) -> np.ndarray:
  """The rows' text states padded to (B, length, hidden) float16 (zeros past each query)."""
  real = [r for r in rows if r is not None]
  hidden = real[0]['text_states'].shape[-1] if real else 1
  states = np.zeros((len(rows), length, hidden), np.float16)
  for i, r in enumerate(rows):
    if r is not None:
      n = min(len(r['text_states']), length)
      states[i, :n] = r['text_states'][:n]
  return states


@dataclasses.dataclass(frozen=True)
class CachedTubeData:
  """The tube `DataAdapter` on cached features (config.data.features_dir): `TubeData`'s samples
  (sampling, temporal crop, text) with `c5`/`swin`/`grid_mask` instead of frames/pixel_mask,
  and with `text` (a frozen text tower, `model.text.frozen`) the query's RoBERTa states
  `text_states` (B, L, hidden) float16 beside its tokens."""
  tubes: TubeData
  grid: tuple[int, int]
  text: TextStateCache | None = None

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, *, train: bool, seed: int,
                  process_count: int = 1) -> 'CachedTubeData':
    d = config.data
    if train and (d.get('flip_prob', 0.0) > 0 or d.get('train_scales', ())):
      raise UserError('data.features_dir: the cache holds the maps of the frames as stored, '
                      'which cannot be flipped or resized; set data.flip_prob = 0 and '
                      'data.train_scales = () to train from it')
    maps = {'c5': 'c5'}
    if config.model.use_swin:     # the test's halves each ran the tower on their own frames
      maps['swin'] = 'swin_halves' if not train and d.get('test_halves', False) else 'swin'
    cache = TubeFeatureCache(d.features_dir, maps)
    with_cache = config.copy_and_resolve_references()
    with_cache.data.frames_dir = d.features_dir   # its index.json is in the frames index format
    tubes = TubeData.from_config(with_cache, train=train, seed=seed, process_count=process_count)
    # frames become 1x1 placeholders: collate_tubes then pads positions, boxes, text and masks
    tubes = dataclasses.replace(tubes, frames=cache, height=1, width=1)
    text = None
    if config.model.text.get('frozen', False):
      if tubes.tokenizer is None:
        raise UserError('model.text.frozen reads cached text states by token ids: set '
                        'data.tokenizer')
      text = TextStateCache(d.features_dir)
    return cls(tubes, (math.ceil(d.height / 32), math.ceil(d.width / 32)), text)

  def length(self, record: TubeRecord) -> int:
    return self.tubes.length(record)

  def example(self, record: TubeRecord, *, epoch: int, index: int) -> dict[str, Any]:
    example = self.tubes.example(record, epoch=epoch, index=index)
    positions = example.pop('frames')
    example.update(self.tubes.frames.rows(record.video_key, positions))
    example['frames'] = np.zeros((len(positions), 1, 1, 3), np.uint8)
    if self.text is not None:
      example['text_states'] = self.text.states(example['tokens'])
    return example

  def collate(self, examples: Sequence[dict | None], length: int
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    rows = self.tubes.rows(examples, FRAME_KEYS + self.tubes.frames.maps)
    batch, meta = self.tubes.collate_rows(rows, length)
    del batch['frames'], batch['pixel_mask']
    batch.update(collate_maps(rows, batch['frame_mask'].shape[1], self.grid,
                              self.tubes.frames.maps))
    if self.text is not None:
      batch['text_states'] = collate_text_states(rows, batch['text_mask'].shape[1])
    return batch, meta
