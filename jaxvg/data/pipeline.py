"""The Grain input pipeline of every task: records -> a task's examples -> static-shape batches.

Built from Grain's own pieces over *positions* (record = position % N, `data.repeat` passes per
epoch):

  MapDataset.range(N * repeat) -> .shuffle(seed) (train: a new order every epoch)
  -> .batch(global batch size) -> .repeat(epochs) -> .map_with_index(LoadBatch)
  -> .to_iter_dataset() -> .mp_prefetch() (worker processes; data.num_workers=0 stays in-process)

`LoadBatch` takes this process's slice of the global batch, asks the task's `DataAdapter` for
one example per position and collates them, padding the batch to its static size with padding
samples (`sample_mask` false). The bucket is chosen from the longest sample of the *global*
batch, so every process pads to the same shapes. Everything a batch holds is a pure function of
(seed, batch number, process index): the iterator state is the next batch number, and restoring
it (`it.set_state(state)`, checkpointed by the trainer) replays the identical remaining batches.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import grain
import numpy as np

from jaxvg.data import readers, stvg_readers
from jaxvg.data.records import GroundingRecord
from jaxvg.errors import UserError
from jaxvg.registry import DataAdapter

UNBOUNDED_EPOCHS = 1 << 30


@dataclasses.dataclass(frozen=True)
class LoadBatch:
  """Loads this process's part of one global batch. Picklable (sent to Grain workers).

  Called by `map_with_index` with (batch number b, the positions of global batch b); the epoch
  is b // batches_per_epoch, and each example's randomness is keyed by (epoch, position).
  """
  adapter: DataAdapter
  records: tuple[Any, ...]
  batch_size: int                   # global batch size
  batches_per_epoch: int
  process_index: int
  process_count: int

  @property
  def local_batch_size(self) -> int:
    return self.batch_size // self.process_count

  def __call__(self, b: int, positions: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    epoch = int(b) // self.batches_per_epoch
    positions = [int(p) for p in positions]
    record = lambda p: self.records[p % len(self.records)]
    length = max(self.adapter.length(record(p)) for p in positions)
    lo = self.process_index * self.local_batch_size
    mine = positions[lo:lo + self.local_batch_size]
    examples = [self.adapter.example(record(p), epoch=epoch, index=p) for p in mine]
    examples += [None] * (self.local_batch_size - len(examples))
    return self.adapter.collate(examples, length)


class Loader:
  """An iterable of (batch dict, metadata); `iter(loader)` is a Grain iterator with
  `get_state()` / `set_state(state)`.

  Attributes:
    records: the split's records (ground truth: `ground_truth()`).
    batches_per_epoch: global batches per epoch (the same on every process).
    num_epochs: epochs the stream covers.
  """

  def __init__(self, load_batch: LoadBatch, num_epochs: int, *, shuffle: bool, repeat: int,
               seed: int, num_workers: int, prefetch: int):
    self._load_batch = load_batch
    self.records = list(load_batch.records)
    self.batches_per_epoch = load_batch.batches_per_epoch
    self.num_epochs = num_epochs
    self.num_workers = num_workers
    positions = grain.MapDataset.range(len(self.records) * repeat)
    if shuffle:
      positions = positions.shuffle(seed=seed)
    self._batches = positions.batch(load_batch.batch_size).repeat(num_epochs)
    self.dataset = self._batches.map_with_index(load_batch).to_iter_dataset(
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
    return self._load_batch(b, self._batches[b])

  def epoch_of(self, step: int) -> int:
    return step // self.batches_per_epoch

  def ground_truth(self) -> list[dict]:
    """Ground-truth rows of the split in the evaluation protocol's schema (`record.to_json()`)."""
    return [r.to_json() for r in self.records]


def load_records(config, split: str, *, train: bool, skip_bad: bool = False
                 ) -> list[GroundingRecord]:
  """The split's records (`GroundingRecord`s, or `TubeRecord`s for STVG datasets);
  `data.min_video_len` filters temporal training splits (as the official R²-Tuning)."""
  data = config.data
  anno_dir = data.anno_dir
  if data.dataset in stvg_readers.STVG_PROTOCOLS:
    if data.dataset == 'synthetic_tubes':
      from jaxvg.data import synthetic_tubes
      anno_dir = synthetic_tubes.ensure_synthetic_tubes(
          data.get('synthetic_root', ''), data.get('synthetic_size', 'default')).root
    return stvg_readers.read_stvg_split(data.dataset, anno_dir, split, skip_bad=skip_bad,
                                        vidor_dir=data.get('vidor_dir', '') or None).records
  if data.dataset == 'synthetic':
    from jaxvg.data import synthetic
    anno_dir = synthetic.paths_for(config).anno_dir
  result = readers.read_split(
      data.dataset, anno_dir, split, domain=data.get('domain', ''), skip_bad=skip_bad,
      min_video_len=data.get('min_video_len', -1) if train else -1)
  return result.records


def make_loader(config, split: str, *, train: bool, num_epochs: int | None = None,
                seed: int | None = None, batch_size: int | None = None,
                process_index: int | None = None, process_count: int | None = None,
                records: Sequence[Any] | None = None) -> Loader:
  """Builds the loader of `split` with the task's `DataAdapter` (`Task.make_data`).

  Args:
    config: the experiment config (config.task, config.data.*, config.train.*).
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
  from jaxvg import registry
  import jax
  if process_index is None or process_count is None:
    process_index, process_count = jax.process_index(), jax.process_count()
  if batch_size is None:
    batch_size = config.train.batch_size if train else config.train.eval_batch_size
  if batch_size % process_count:
    raise UserError(f'batch size {batch_size} is not divisible by {process_count} processes')
  if records is None:
    records = load_records(config, split, train=train)
  if not records:
    raise UserError(f'{config.data.dataset}/{split}: no records')
  if num_epochs is None:
    num_epochs = config.train.epochs if train else 1
  if num_epochs < 0:
    num_epochs = UNBOUNDED_EPOCHS
  seed = config.seed if seed is None else seed
  adapter = registry.get_task(config.task).make_data(config, train=train, seed=seed,
                                                     process_count=process_count)
  repeat = int(config.data.get('repeat', 1)) if train else 1
  load_batch = LoadBatch(adapter=adapter, records=tuple(records), batch_size=batch_size,
                         batches_per_epoch=-(-len(records) * repeat // batch_size),
                         process_index=process_index, process_count=process_count)
  return Loader(load_batch, num_epochs, shuffle=train, repeat=repeat, seed=seed,
                num_workers=config.data.num_workers, prefetch=config.data.get('prefetch', 2))
