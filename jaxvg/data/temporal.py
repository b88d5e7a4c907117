"""Examples and batches for temporal grounding (moment retrieval, highlight detection): the
`DataAdapter` that R²-Tuning and SDST share.

One example is a `GroundingRecord`'s video (cached multi-layer CLIP features, or pre-decoded
frames for a frozen CLIP inside the step), its query (cached features, or CLIP token ids) and its
targets in clip units (`jaxvg.data.targets`). `collate` pads to the smallest T bucket that holds
the batch's longest video (and an L bucket for cached query features), with masks.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import ml_collections
import numpy as np

from jaxvg.data import targets as targets_lib
from jaxvg.data.features import FeatureCache
from jaxvg.data.frames import FrameReader
from jaxvg.data.internvideo2 import InternVideo2Features
from jaxvg.data.records import GroundingRecord
from jaxvg.errors import UserError

TOKEN_LENGTH = 77


def pick_bucket(length: int, buckets: Sequence[int]) -> int | None:
  """The smallest bucket >= length, or None if the length exceeds every bucket."""
  for bucket in sorted(buckets):
    if bucket >= length:
      return bucket
  return None


@dataclasses.dataclass(frozen=True)
class TemporalGroundingData:
  """Picklable (Grain workers receive it). See `jaxvg.registry.DataAdapter`.

  Attributes:
    source: 'features' (cached CLIP features) or 'frames' (pre-decoded frames + token ids).
    features / frames: the open feature cache or frame reader of that source: R²-Tuning's CLIP
      caches (video (T, K, P, Dv)) or, with `data.feature_format='internvideo2'`, the SDST
      release (video (T, K, Dv), `jaxvg.data.internvideo2`); the batch's video takes the
      cache's per-clip shape.
    seed: data seed; positive clips are drawn from (seed, epoch, index).
    t_buckets, l_buckets: static lengths of the video (clips) and query (tokens) axes.
    max_windows: ground-truth windows per sample.
    truncate: cut videos longer than the largest bucket (else a `UserError`).
    exact_lengths: pad to the batch's longest video and query instead of a bucket, as the
      official collate does (official-padding training only: every new length compiles).
    uniform_query_bucket: pad queries to the largest L bucket (multi-host: processes see
      different queries, and only the largest bucket is sure to agree across them).
  """
  source: str
  features: FeatureCache | InternVideo2Features | None
  frames: FrameReader | None
  seed: int
  t_buckets: tuple[int, ...]
  l_buckets: tuple[int, ...]
  max_windows: int
  truncate: bool = False
  exact_lengths: bool = False
  uniform_query_bucket: bool = False

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, *, train: bool, seed: int,
                  process_count: int = 1) -> 'TemporalGroundingData':
    data = config.data
    features = frames = None
    if data.source == 'features':
      feature_format = data.get('feature_format', 'clip')
      if feature_format == 'internvideo2':
        features = InternVideo2Features.from_config(config)
      elif feature_format == 'clip':
        features = FeatureCache.from_config(config)
      else:
        raise UserError(f"data.feature_format must be 'clip' or 'internvideo2', got "
                        f'{feature_format!r}')
    elif data.source == 'frames':
      if data.dataset == 'synthetic':
        from jaxvg.data import synthetic
        frames_dir = synthetic.paths_for(config).frames_dir
      else:
        frames_dir = data.frames_dir
      frames = FrameReader(frames_dir)
    else:
      raise UserError(f"data.source must be 'features' or 'frames', got {data.source!r}")
    return cls(source=data.source, features=features, frames=frames, seed=seed,
               t_buckets=tuple(data.t_buckets), l_buckets=tuple(data.l_buckets),
               max_windows=data.max_windows, truncate=bool(data.get('truncate', False)),
               exact_lengths=train and bool(config.model.get('official_padding', False)),
               uniform_query_bucket=process_count > 1)

  def _num_clips(self, record: GroundingRecord) -> int:
    if self.source == 'features':
      return self.features.num_clips(record.video_key)   # a memory-map: header only
    return self.frames.num_frames(record.video_key)

  def length(self, record: GroundingRecord) -> int:
    """Clips the sample occupies (after truncation)."""
    return min(self._num_clips(record), max(self.t_buckets))

  def example(self, record: GroundingRecord, *, epoch: int, index: int) -> dict[str, Any]:
    num_clips = self._num_clips(record)
    max_t = max(self.t_buckets)
    if num_clips > max_t:
      if not self.truncate:
        raise UserError(f'video {record.vid!r} ({record.source}) has {num_clips} clips, more '
                        f'than the largest bucket {max_t}; add a bucket or set '
                        'data.truncate=True')
      num_clips = max_t
    tgt = targets_lib.make_targets(record, num_clips, seed=self.seed, epoch=epoch, index=index)
    if tgt.windows.shape[0] > self.max_windows:
      raise UserError(f'qid {record.qid!r} ({record.source}) has {tgt.windows.shape[0]} '
                      f'windows, more than data.max_windows={self.max_windows}')
    if self.source == 'frames':
      video, query = self.frames.read(record.video_key, tgt.num_clips), None
    else:
      video = self.features.video(record.video_key)[:tgt.num_clips]
      query = self.features.query(record.feature_key)
    return {'record': record, 'video': video, 'query': query, 'targets': tgt}

  def _query_length(self, real: list[dict]) -> int:
    longest = max([s['query'].shape[0] for s in real], default=1)
    if self.exact_lengths:
      return longest
    bucket = max(self.l_buckets) if self.uniform_query_bucket else \
        pick_bucket(longest, self.l_buckets)
    if bucket is None or bucket < longest:
      raise UserError(f'query of {longest} tokens exceeds data.l_buckets {self.l_buckets}')
    return bucket

  def collate(self, examples: Sequence[dict | None], length: int
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Pads to the T bucket of `length` (the global batch's longest video); None = padding."""
    real = [s for s in examples if s is not None]
    bsz, g = len(examples), self.max_windows
    t_len = length if self.exact_lengths else pick_bucket(length, self.t_buckets)
    batch: dict[str, np.ndarray] = {
        'video_mask': np.zeros((bsz, t_len), bool),
        'windows': np.zeros((bsz, g, 2), np.float32),
        'window_mask': np.zeros((bsz, g), bool),
        'saliency': np.zeros((bsz, t_len), np.float32),
        'pos_clip': np.zeros((bsz,), np.int32),
        'sample_mask': np.array([s is not None for s in examples]),
    }
    if self.source == 'features':
      l_len = self._query_length(real)
      batch['video'] = np.zeros((bsz, t_len) + self.features.video_shape, np.float16)
      batch['query'] = np.zeros((bsz, l_len) + self.features.query_shape, np.float16)
      batch['query_mask'] = np.zeros((bsz, l_len), bool)
    else:
      size = real[0]['video'].shape[1] if real else 224
      batch['frames'] = np.zeros((bsz, t_len, size, size, 3), np.uint8)
    meta = {'qid': [None] * bsz, 'vid': [''] * bsz, 'query': [''] * bsz,
            'duration': np.zeros(bsz, np.float32), 'fps': np.zeros(bsz, np.float32)}
    for i, s in enumerate(examples):
      if s is None:
        continue
      record, tgt = s['record'], s['targets']
      t = tgt.num_clips
      batch['video' if self.source == 'features' else 'frames'][i, :t] = s['video']
      batch['video_mask'][i, :t] = True
      batch['saliency'][i, :t] = tgt.saliency
      batch['pos_clip'][i] = tgt.pos_clip
      n = tgt.windows.shape[0]
      batch['windows'][i, :n] = tgt.windows
      batch['window_mask'][i, :n] = True
      if self.source == 'features':
        length = s['query'].shape[0]
        batch['query'][i, :length] = s['query']
        batch['query_mask'][i, :length] = True
      meta['qid'][i], meta['vid'][i], meta['query'][i] = record.qid, record.vid, record.query
      meta['duration'][i], meta['fps'][i] = record.duration, record.fps
    if self.source == 'frames':
      from jaxvg.clip import tokenize  # Lazy: only the frames path needs the tokenizer.
      tokens = np.zeros((bsz, TOKEN_LENGTH), np.int32)
      rows = [i for i, s in enumerate(examples) if s is not None]
      if rows:
        tokens[rows] = tokenize([examples[i]['record'].query for i in rows])
      batch['tokens'] = tokens
      batch['query_mask'] = tokens != 0
    return batch, meta


def dummy_batch(config: ml_collections.ConfigDict, batch_size: int) -> dict[str, np.ndarray]:
  """A temporal-grounding batch of zeros at the smallest (T, L) buckets, feature widths from
  `config.model` (`num_tokens` 0: one pooled vector per clip and layer); masks true, so a
  forward pass on it is finite. Tasks use it to initialise and count parameters."""
  m, d = config.model, config.data
  t, l, k = min(d.t_buckets), min(d.l_buckets), m.num_layers
  tokens = (m.num_tokens,) if m.get('num_tokens', 0) else ()
  return dict(
      video=np.zeros((batch_size, t, k) + tokens + (m.video_dims,), np.float32),
      video_mask=np.ones((batch_size, t), bool),
      query=np.zeros((batch_size, l, k, m.query_dims), np.float32),
      query_mask=np.ones((batch_size, l), bool),
      windows=np.zeros((batch_size, d.max_windows, 2), np.float32),
      window_mask=np.zeros((batch_size, d.max_windows), bool),
      saliency=np.zeros((batch_size, t), np.float32),
      pos_clip=np.zeros((batch_size,), np.int32),
      sample_mask=np.ones((batch_size,), bool))
