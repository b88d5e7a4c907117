"""Grain input pipelines: records -> static-shape batch dicts + host metadata.

The stream is a `grain.MapDataset` over *global batch numbers* b = epoch * batches_per_epoch + i:

  range(epochs * nb) -> map(load batch b): shuffle (seeded per epoch), repeat x `data.repeat`,
  take this process's slice of the global batch, load features or frames, targets, bucket + pad,
  pad the last batch with dummy samples (sample_mask False)
  -> to_iter_dataset -> mp_prefetch (worker processes; num_workers=0 stays in-process)

Everything a batch holds is a pure function of (config.seed, b, process index): the iterator state
is just the next batch number, restoring it (`it.set_state(state)`, or Orbax with
`grain.checkpoint.CheckpointSave(it)`) replays the identical remaining batches.

Per-host sharding: the global batch `train.batch_size` is split into `process_count` contiguous
slices; process p loads only slice p (default `jax.process_index()` / `jax.process_count()`), so
`jax.make_array_from_process_local_data` reassembles the global batch.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import grain
import numpy as np

from jaxvg.data import readers, targets as targets_lib
from jaxvg.data.features import FeatureCache
from jaxvg.data.frames import FrameReader
from jaxvg.data.records import GroundingRecord

TOKEN_LENGTH = 77
UNBOUNDED_EPOCHS = 1 << 30


def pick_bucket(length: int, buckets: Sequence[int]) -> int | None:
  """The smallest bucket >= length, or None if the length exceeds every bucket."""
  for bucket in sorted(buckets):
    if bucket >= length:
      return bucket
  return None


@dataclasses.dataclass(frozen=True)
class BatchLoader:
  """Loads global batch number `b` for one process. Picklable (sent to Grain workers)."""
  records: tuple[GroundingRecord, ...]
  source: str                       # 'features' or 'frames'
  features: FeatureCache | None
  frames: FrameReader | None
  batch_size: int                   # global batch size
  process_index: int
  process_count: int
  shuffle: bool
  repeat: int
  seed: int
  t_buckets: tuple[int, ...]
  l_buckets: tuple[int, ...]
  max_windows: int
  truncate: bool

  @property
  def epoch_size(self) -> int:
    return len(self.records) * self.repeat

  @property
  def batches_per_epoch(self) -> int:
    return -(-self.epoch_size // self.batch_size)

  @property
  def local_batch_size(self) -> int:
    return self.batch_size // self.process_count

  def epoch_order(self, epoch: int) -> np.ndarray:
    """Positions 0..N*repeat-1 in this epoch's order (record = position % N)."""
    if not self.shuffle:
      return np.arange(self.epoch_size)
    return np.random.default_rng([self.seed, epoch]).permutation(self.epoch_size)

  def positions(self, b: int) -> tuple[int, list[int | None]]:
    """(epoch, this process's positions of global batch b; None = padding)."""
    epoch, i = divmod(b, self.batches_per_epoch)
    order = self.epoch_order(epoch)
    lo = i * self.batch_size + self.process_index * self.local_batch_size
    return epoch, [int(order[j]) if j < self.epoch_size else None
                   for j in range(lo, lo + self.local_batch_size)]

  def _load_sample(self, position: int, epoch: int) -> dict[str, Any]:
    record = self.records[position % len(self.records)]
    if self.source == 'features':
      video = self.features.video(record.video_key)
      query = self.features.query(record.feature_key)
      num_clips = video.shape[0]
    else:
      num_clips = self.frames.num_frames(record.video_key)
      video, query = None, None
    max_t = max(self.t_buckets)
    if num_clips > max_t:
      if not self.truncate:
        raise ValueError(f'video {record.vid!r} ({record.source}) has {num_clips} clips, more '
                         f'than the largest bucket {max_t}; add a bucket or set '
                         'data.truncate=True')
      num_clips = max_t
    tgt = targets_lib.make_targets(record, num_clips, seed=self.seed, epoch=epoch,
                                   index=position)
    if tgt.windows.shape[0] > self.max_windows:
      raise ValueError(f'qid {record.qid!r} ({record.source}) has {tgt.windows.shape[0]} '
                       f'windows, more than data.max_windows={self.max_windows}')
    if self.source == 'frames':
      video = self.frames.read(record.video_key, tgt.num_clips)
    else:
      video = video[:tgt.num_clips]
    return {'record': record, 'video': video, 'query': query, 'targets': tgt}

  def _video_length(self, position: int) -> int:
    record = self.records[position % len(self.records)]
    if self.source == 'features':
      return self.features.video(record.video_key).shape[0]   # a memory-map: header only
    return self.frames.num_frames(record.video_key)

  def global_time_bucket(self, b: int) -> int:
    """The T bucket of global batch b, the same on every process (its arrays must agree)."""
    epoch, i = divmod(b, self.batches_per_epoch)
    order = self.epoch_order(epoch)[i * self.batch_size:(i + 1) * self.batch_size]
    longest = max((self._video_length(int(p)) for p in order), default=1)
    return pick_bucket(min(longest, max(self.t_buckets)), self.t_buckets)

  def __call__(self, b: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    epoch, positions = self.positions(int(b))
    samples = [None if p is None else self._load_sample(p, epoch) for p in positions]
    t_len = self.global_time_bucket(int(b)) if self.process_count > 1 else None
    return self.collate(samples, t_len)

  def collate(self, samples: list[dict | None], t_len: int | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Pads samples to the batch's bucket (T, L); None entries become dummy samples.

    `t_len` fixes T (multi-host: every process must pad to the global batch's bucket).
    """
    real = [s for s in samples if s is not None]
    bsz, g = len(samples), self.max_windows
    if t_len is None:
      t_len = pick_bucket(max([s['targets'].num_clips for s in real], default=1), self.t_buckets)
    batch: dict[str, np.ndarray] = {
        'video_mask': np.zeros((bsz, t_len), bool),
        'windows': np.zeros((bsz, g, 2), np.float32),
        'window_mask': np.zeros((bsz, g), bool),
        'saliency': np.zeros((bsz, t_len), np.float32),
        'pos_clip': np.zeros((bsz,), np.int32),
        'sample_mask': np.array([s is not None for s in samples]),
    }
    if self.source == 'features':
      k, p, dv = self.features.video_shape
      k, dq = self.features.query_shape
      l_len = max([s['query'].shape[0] for s in real], default=1)
      # Processes see different queries; only the largest bucket is sure to agree across them.
      l_bucket = pick_bucket(l_len, self.l_buckets) if self.process_count == 1 \
          else max(self.l_buckets)
      if l_bucket is None:
        raise ValueError(f'query of {l_len} tokens exceeds data.l_buckets {self.l_buckets}')
      batch['video'] = np.zeros((bsz, t_len, k, p, dv), np.float16)
      batch['query'] = np.zeros((bsz, l_bucket, k, dq), np.float16)
      batch['query_mask'] = np.zeros((bsz, l_bucket), bool)
    else:
      size = real[0]['video'].shape[1] if real else 224
      batch['frames'] = np.zeros((bsz, t_len, size, size, 3), np.uint8)
    meta = {'qid': [None] * bsz, 'vid': [''] * bsz, 'query': [''] * bsz,
            'duration': np.zeros(bsz, np.float32), 'fps': np.zeros(bsz, np.float32)}
    for i, s in enumerate(samples):
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
      if real:
        rows = [i for i, s in enumerate(samples) if s is not None]
        tokens[rows] = tokenize([samples[i]['record'].query for i in rows])
      batch['tokens'] = tokens
      batch['query_mask'] = tokens != 0
    return batch, meta


class Loader:
  """An iterable of (batch dict, metadata); `iter(loader)` is a Grain iterator with
  `get_state()` / `set_state(state)`.

  Attributes:
    records: the split's records (ground truth: `ground_truth()`).
    batches_per_epoch: global batches per epoch (the same on every process).
    num_epochs: epochs the stream covers.
  """

  def __init__(self, batch_loader: BatchLoader, num_epochs: int, num_workers: int,
               prefetch: int):
    self._loader = batch_loader
    self.records = list(batch_loader.records)
    self.batches_per_epoch = batch_loader.batches_per_epoch
    self.num_epochs = num_epochs
    self.num_workers = num_workers
    self.prefetch = prefetch
    dataset = grain.MapDataset.range(self.batches_per_epoch * num_epochs).map(batch_loader)
    self.dataset = dataset.to_iter_dataset(
        grain.ReadOptions(num_threads=0 if num_workers else 1,
                          prefetch_buffer_size=max(prefetch, 1)))
    if num_workers > 0:
      from absl import flags  # Grain's worker processes read absl flags; parse them if no app did.
      if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
      self.dataset = self.dataset.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=num_workers, per_worker_buffer_size=max(prefetch, 1)))

  def __len__(self) -> int:
    return self.batches_per_epoch * self.num_epochs

  def __iter__(self) -> grain.DatasetIterator:
    return iter(self.dataset)

  def batch(self, b: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Global batch number b, loaded directly (no iterator, no prefetch)."""
    return self._loader(b)

  def epoch_of(self, step: int) -> int:
    return step // self.batches_per_epoch

  def ground_truth(self) -> list[dict]:
    """QVH-schema ground-truth rows of the split (input of jaxvg.evaluation.evaluate)."""
    return [r.to_json() for r in self.records]


def load_records(config, split: str, *, train: bool, skip_bad: bool = False
                 ) -> list[GroundingRecord]:
  """The split's records; `data.min_video_len` filters training splits (as the official)."""
  data = config.data
  anno_dir = data.anno_dir
  if data.dataset == 'synthetic':
    anno_dir = _synthetic_paths(config).anno_dir
  result = readers.read_split(
      data.dataset, anno_dir, split, domain=data.get('domain', ''), skip_bad=skip_bad,
      min_video_len=data.get('min_video_len', -1) if train else -1)
  return result.records


def _synthetic_paths(config):
  from jaxvg.data import synthetic
  return synthetic.ensure_synthetic(config.data.get('synthetic_root', '') or
                                    synthetic.default_root(),
                                    config.data.get('synthetic_size', 'default'))


def make_loader(config, split: str, *, train: bool, num_epochs: int | None = None,
                seed: int | None = None, batch_size: int | None = None,
                process_index: int | None = None, process_count: int | None = None,
                records: Sequence[GroundingRecord] | None = None) -> Loader:
  """Builds the loader of `split`.

  Args:
    config: the experiment config (uses config.data.*, config.model.* widths, config.train.*).
    split: split name of the dataset ('train', 'val', 'test').
    train: shuffle (seeded per epoch), repeat x data.repeat, filter by data.min_video_len,
      batch size train.batch_size; otherwise in file order once, train.eval_batch_size.
    num_epochs: epochs in the stream (default: train.epochs when training, 1 otherwise;
      -1 = unbounded).
    seed: data seed (default config.seed).
    batch_size: global batch size override.
    process_index, process_count: this host's slice (default jax.process_index/count()).
    records: use these records instead of reading the split.
  """
  data = config.data
  if process_index is None or process_count is None:
    import jax
    process_index, process_count = jax.process_index(), jax.process_count()
  if batch_size is None:
    batch_size = config.train.batch_size if train else config.train.eval_batch_size
  if batch_size % process_count:
    raise ValueError(f'batch size {batch_size} is not divisible by {process_count} processes')
  if records is None:
    records = load_records(config, split, train=train)
  if not records:
    raise ValueError(f'{data.dataset}/{split}: no records')
  features = frames = None
  if data.source == 'features':
    features = FeatureCache.from_config(config)
  elif data.source == 'frames':
    frames_dir = _synthetic_paths(config).frames_dir if data.dataset == 'synthetic' \
        else data.frames_dir
    frames = FrameReader(frames_dir)
  else:
    raise ValueError(f"data.source must be 'features' or 'frames', got {data.source!r}")
  if num_epochs is None:
    num_epochs = config.train.epochs if train else 1
  if num_epochs < 0:
    num_epochs = UNBOUNDED_EPOCHS
  batch_loader = BatchLoader(
      records=tuple(records), source=data.source, features=features, frames=frames,
      batch_size=batch_size, process_index=process_index, process_count=process_count,
      shuffle=train, repeat=int(data.get('repeat', 1)) if train else 1,
      seed=config.seed if seed is None else seed, t_buckets=tuple(data.t_buckets),
      l_buckets=tuple(data.l_buckets), max_windows=data.max_windows,
      truncate=bool(data.get('truncate', False)))
  return Loader(batch_loader, num_epochs, num_workers=data.num_workers,
                prefetch=data.get('prefetch', 2))

