"""Per-sample and batching pieces of the Grain pipeline for tubes (pure host-side NumPy).

`make_tube_example` turns a `TubeRecord` and its stored frames (each with its raw frame index,
`FrameReader.frame_ids`) into one sample; `collate_tubes` pads samples into static shapes: T from
a fixed set of frame buckets, frames padded to one (height, width) with a pixel mask (the frames
are resized without cropping, so their sizes differ), text to a fixed length, and missing samples
(None) fully masked. Boxes are normalised [cx, cy, w, h] of the unpadded frame.

Batch dict (B samples, T frames, H x W pixels, L text tokens):
  frames      (B, T, H, W, 3) uint8     pixel_mask (B, H, W) bool    frame_mask (B, T) bool
  boxes       (B, T, 4) float32 cxcywh in [0, 1]                     box_mask   (B, T) bool
  in_span     (B, T) bool  frames inside the GT span ("actioness")
  span        (B, 2) int32 first and last in-span position (0, 0 for padding)
  tokens      (B, L) int32, text_mask (B, L) bool  (when the examples carry tokens)
  sample_mask (B,) bool
Host metadata: qid, vid, query, frame_ids (B, T) raw indices, frame_mask, width, height,
sample_mask: what `jaxvg.postprocess.tubes.postprocess_tubes` needs.

`TubeData` wires both into the engine as a `jaxvg.registry.DataAdapter` (config.data:
frames_dir, max_frames, frame_buckets, height, width, crop_prob, max_text_len, tokenizer, the
training augmentation's flip_prob, flip_whole_words, train_scales, train_max_size, and the
evaluation's test_halves: two rows per sample, its even and odd frames, as the official test).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Sequence

import ml_collections
import numpy as np

from jaxvg.data.frames import FrameReader
from jaxvg.data.tubes import TubeRecord
from jaxvg.text.roberta_tokenizer import RobertaTokenizer


def temporal_crop(in_span: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
  """CG-STVG's training crop: a start drawn among the positions before the span (0 if none) and
  an end among those after it (the last if none); returns [start, end) positions."""
  span = np.flatnonzero(in_span)
  if not len(span):
    return 0, len(in_span)
  start = int(rng.integers(0, span[0])) if span[0] > 0 else 0
  end = int(rng.integers(span[-1] + 1, len(in_span))) if span[-1] < len(in_span) - 1 else (
      len(in_span) - 1)
  return start, end + 1


def make_tube_example(record: TubeRecord, frames: np.ndarray, frame_ids: np.ndarray, *,
                      max_frames: int, crop_prob: float = 0.0,
                      rng: np.random.Generator | None = None,
                      tokens: np.ndarray | None = None) -> dict[str, Any]:
  """One sample: the stored frames (T_all, h, w, 3) at raw `frame_ids`, optionally cropped in time
  (probability `crop_prob`, training), then at most `max_frames` by int(linspace)."""
  frame_ids = np.asarray(frame_ids, np.int64)
  start, end = int(record.span[0]), int(record.span[1])
  in_span = (frame_ids >= start) & (frame_ids < end)
  keep = np.arange(len(frame_ids))
  if crop_prob > 0 and rng is not None and rng.random() < crop_prob:
    lo, hi = temporal_crop(in_span, rng)
    keep = keep[lo:hi]
  if len(keep) > max_frames:
    keep = keep[np.linspace(0, len(keep) - 1, max_frames).astype(np.int64)]
  frame_ids, in_span = frame_ids[keep], in_span[keep]
  dense, has_box = record.dense_boxes()
  xyxy = dense[frame_ids] / np.array([record.width, record.height] * 2, np.float32)
  boxes = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], axis=1)
  example = {
      'frames': np.asarray(frames)[keep], 'frame_ids': frame_ids,
      'boxes': boxes.astype(np.float32), 'box_mask': has_box[frame_ids], 'in_span': in_span,
      'span': span_positions(in_span),
      'qid': record.qid, 'vid': record.vid, 'query': record.query,
      'width': record.width, 'height': record.height}
  if tokens is not None:
    example['tokens'] = np.asarray(tokens, np.int32)
  return example


# The per-frame entries of an example (what a temporal subsample selects).
FRAME_KEYS = ('frames', 'frame_ids', 'boxes', 'box_mask', 'in_span')


def span_positions(in_span: np.ndarray) -> np.ndarray:
  """(2,) int32 first and last in-span position, (0, 0) without one."""
  positions = np.flatnonzero(in_span)
  return (np.array([positions[0], positions[-1]], np.int32) if len(positions)
          else np.zeros(2, np.int32))


def even_odd_halves(example: dict[str, Any], frame_keys: Sequence[str] = FRAME_KEYS
                    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
  """The official test protocol (`engine/evaluate.py` `do_eval`): a clip sampled at twice the
  training density runs as two clips, its even frames (`videos.subsample(2, start_idx=0)`) and
  its odd frames (`start_idx=1`), each a sample of its own with the same qid (the
  post-processor merges them). The odd half of a one-frame clip is None (a padding sample)."""
  halves = []
  for parity in (0, 1):
    half = dict(example)
    for key in frame_keys:
      half[key] = example[key][parity::2]
    half['span'] = span_positions(half['in_span'])
    halves.append(half)
  return halves[0], halves[1] if len(halves[1]['frame_ids']) else None


def halves_rows(examples: Sequence[dict | None], frame_keys: Sequence[str] = FRAME_KEYS
                ) -> list[dict | None]:
  """Each example's even and odd halves side by side, the batch rows of the official test (a
  padding sample gives two padding rows)."""
  return [half for e in examples
          for half in (even_odd_halves(e, frame_keys) if e is not None else (None, None))]


def frame_bucket(length: int, buckets: Sequence[int]) -> int:
  """The smallest bucket holding `length` frames."""
  for bucket in sorted(buckets):
    if length <= bucket:
      return bucket
  raise ValueError(f'{length} frames exceed the largest frame bucket {max(buckets)}')


def collate_tubes(examples: Sequence[dict | None], *, frame_buckets: Sequence[int],
                  height: int, width: int, max_text_len: int = 0, length: int | None = None,
                  pad_token_id: int = 0) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """Static-shape batch and host metadata (see the module docstring); None = padding sample.

  T is the bucket of `length` (the global batch's longest sample; default: these examples');
  tokens are padded with `pad_token_id`.
  """
  real = [e for e in examples if e is not None]
  b = len(examples)
  longest = max([len(e['frame_ids']) for e in real], default=1)
  t = frame_bucket(max(longest, length or 0), frame_buckets)
  batch = {
      'frames': np.zeros((b, t, height, width, 3), np.uint8),
      'pixel_mask': np.zeros((b, height, width), bool),
      'frame_mask': np.zeros((b, t), bool), 'boxes': np.zeros((b, t, 4), np.float32),
      'box_mask': np.zeros((b, t), bool), 'in_span': np.zeros((b, t), bool),
      'span': np.zeros((b, 2), np.int32), 'sample_mask': np.zeros(b, bool)}
  if max_text_len:
    batch['tokens'] = np.full((b, max_text_len), pad_token_id, np.int32)
    batch['text_mask'] = np.zeros((b, max_text_len), bool)
  meta = {'qid': [None] * b, 'vid': [''] * b, 'query': [''] * b,
          'frame_ids': np.zeros((b, t), np.int64), 'width': np.ones(b, np.int64),
          'height': np.ones(b, np.int64)}
  for i, e in enumerate(examples):
    if e is None:
      continue
    n, (h, w) = len(e['frame_ids']), e['frames'].shape[1:3]
    if h > height or w > width:
      raise ValueError(f"{e['qid']!r}: frames {h}x{w} exceed the batch size {height}x{width}")
    batch['frames'][i, :n, :h, :w] = e['frames']
    batch['pixel_mask'][i, :h, :w] = True
    batch['frame_mask'][i, :n] = True
    for key in ('boxes', 'box_mask', 'in_span'):
      batch[key][i, :n] = e[key]
    batch['span'][i] = e['span']
    batch['sample_mask'][i] = True
    if max_text_len and 'tokens' in e:
      tokens = e['tokens'][:max_text_len]
      batch['tokens'][i, :len(tokens)] = tokens
      batch['text_mask'][i, :len(tokens)] = True
    meta['frame_ids'][i, :n] = e['frame_ids']
    for key in ('qid', 'vid', 'query', 'width', 'height'):
      meta[key][i] = e[key]
  meta['frame_mask'] = batch['frame_mask']
  meta['sample_mask'] = batch['sample_mask']
  return batch, meta


_LEFT_RIGHT = {'left': 'right', 'right': 'left', 'Left': 'Right', 'Right': 'Left',
               'LEFT': 'RIGHT', 'RIGHT': 'LEFT'}
_LEFT_RIGHT_WORD = re.compile(r'\b(' + '|'.join(_LEFT_RIGHT) + r')\b')


def swap_left_right(text: str, whole_words: bool = False) -> str:
  """The text side of the horizontal flip. Official (`RandomHorizontalFlip`): lower-case
  substrings, so 'bright' becomes 'bleft' and 'Left' stays; `whole_words` swaps the words
  'left'/'right' in any of their three casings only (the fix)."""
  if whole_words:
    return _LEFT_RIGHT_WORD.sub(lambda m: _LEFT_RIGHT[m.group(0)], text)
  return text.replace('right', '\0').replace('left', 'right').replace('\0', 'left')


def random_resize_shape(height: int, width: int, scales: Sequence[int], max_size: int | None,
                        rng: np.random.Generator) -> tuple[int, int]:
  """DETR's `RandomResize.get_size`: a short side drawn from `scales`, lowered so that the long
  side stays within `max_size`; the long side keeps the aspect ratio (int())."""
  size = int(scales[int(rng.integers(len(scales)))])
  short, long = min(height, width), max(height, width)
  if max_size is not None and long / short * size > max_size:
    size = int(round(max_size * short / long))
  if short == size:
    return height, width
  if width < height:
    return int(size * height / width), size
  return size, int(size * width / height)


def resize_frames(frames: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  """(T, h, w, 3) uint8 -> (T, H, W, 3), bilinear."""
  if frames.shape[1:3] == tuple(shape):
    return frames
  from PIL import Image
  return np.stack([np.asarray(Image.fromarray(f).resize(shape[::-1], Image.BILINEAR))
                   for f in frames])


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """CG-STVG's spatial training augmentation (`datasets/build.py`), on one example.

  Attributes:
    flip_prob: horizontal flip of every frame (boxes mirrored, left/right swapped in the query).
    flip_whole_words: swap the words only (see `swap_left_right`); False is official.
    scales: short sides to resize to (() = none); boxes are normalised, so unchanged.
    max_size: the long side at most after resizing.
  """
  flip_prob: float = 0.0
  flip_whole_words: bool = False
  scales: tuple[int, ...] = ()
  max_size: int | None = None

  @classmethod
  def from_config(cls, data: ml_collections.ConfigDict) -> 'Augmentation':
    return cls(flip_prob=float(data.get('flip_prob', 0.0)),
               flip_whole_words=bool(data.get('flip_whole_words', False)),
               scales=tuple(data.get('train_scales', ())),
               max_size=data.get('train_max_size', None))

  def __call__(self, example: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """The flip, then the resize (the official order), drawn from `rng`."""
    example = dict(example)
    if self.flip_prob > 0 and rng.random() < self.flip_prob:
      example['frames'] = example['frames'][:, :, ::-1]
      boxes = example['boxes'].copy()
      boxes[:, 0] = 1 - boxes[:, 0]     # x -> W - x on the normalised unpadded frame
      example['boxes'] = boxes
      example['query'] = swap_left_right(example['query'], self.flip_whole_words)
    if self.scales:
      h, w = example['frames'].shape[1:3]
      shape = random_resize_shape(h, w, self.scales, self.max_size, rng)
      example['frames'] = resize_frames(np.ascontiguousarray(example['frames']), shape)
    return example


@dataclasses.dataclass(frozen=True)
class TubeData:
  """The `jaxvg.registry.DataAdapter` of tube tasks over pre-decoded STVG frames. Picklable.

  Attributes:
    frames: reader of a `jaxvg.prepare stvg_frames` directory (frames keep their raw index).
    seed: data seed; the temporal crop and the augmentation draw from (seed, epoch, index).
    max_frames: frames per sample at most (int(linspace) subsampling beyond).
    frame_buckets: static T values.
    height, width: the static frame size every batch is padded to.
    crop_prob: probability of CG-STVG's temporal crop (training only; 0 at evaluation).
    max_text_len: static token length when examples carry `tokens` (0: text in metadata only).
    tokenizer: turns the (augmented) query into `tokens`, or None.
    augment: the spatial training augmentation (None at evaluation).
    test_halves: the official test protocol (evaluation only): the stored clip (sampled at twice
      the training density) runs as its even and its odd frames, two batch rows per sample
      (`even_odd_halves`); `max_frames` then bounds each half.
  """
  frames: FrameReader
  seed: int
  max_frames: int
  frame_buckets: tuple[int, ...]
  height: int
  width: int
  crop_prob: float = 0.0
  max_text_len: int = 0
  tokenizer: RobertaTokenizer | None = None
  augment: Augmentation | None = None
  test_halves: bool = False

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, *, train: bool, seed: int,
                  process_count: int = 1) -> 'TubeData':
    del process_count  # every shape is static (frame bucket from the global batch, fixed H×W)
    data = config.data
    tokenizer = None
    if data.get('tokenizer', ''):
      tokenizer = RobertaTokenizer.from_folder(tokenizer_folder(data), data.max_text_len)
    return cls(frames=FrameReader(frames_dir(data)), seed=seed, max_frames=data.max_frames,
               frame_buckets=tuple(data.frame_buckets), height=data.height, width=data.width,
               crop_prob=float(data.get('crop_prob', 0.0)) if train else 0.0,
               max_text_len=int(data.get('max_text_len', 0)), tokenizer=tokenizer,
               augment=Augmentation.from_config(data) if train else None,
               test_halves=not train and bool(data.get('test_halves', False)))

  @property
  def clip_frames(self) -> int:
    """Frames of the sampled clip at most (both halves together with `test_halves`)."""
    return self.max_frames * (2 if self.test_halves else 1)

  def length(self, record: TubeRecord) -> int:
    """Frames of one batch row: the clip, or its longer (even) half."""
    frames = min(self.frames.num_frames(record.video_key), self.clip_frames)
    return -(-frames // 2) if self.test_halves else frames

  def example(self, record: TubeRecord, *, epoch: int, index: int) -> dict[str, Any]:
    rng = np.random.default_rng([self.seed, epoch, index])
    frame_ids = self.frames.frame_ids(record.video_key)
    if frame_ids is None:
      raise ValueError(f'{self.frames.path}: {record.video_key!r} has no raw frame indices '
                       '(prepare it with `python -m jaxvg.prepare stvg_frames`)')
    example = make_tube_example(record, self.frames.read(record.video_key), frame_ids,
                                max_frames=self.clip_frames, crop_prob=self.crop_prob, rng=rng)
    if self.augment is not None:
      example = self.augment(example, rng)
    if self.tokenizer is not None:
      example['tokens'] = self.tokenizer.encode(example['query'])
    return example

  def rows(self, examples: Sequence[dict | None], frame_keys: Sequence[str] = FRAME_KEYS
           ) -> list[dict | None]:
    """The batch rows of `examples`: themselves, or with `test_halves` each one's even and odd
    halves side by side (a padding sample gives two padding rows)."""
    return halves_rows(examples, frame_keys) if self.test_halves else list(examples)

  def collate_rows(self, rows: Sequence[dict | None], length: int
                   ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    return collate_tubes(rows, frame_buckets=self.frame_buckets, height=self.height,
                         width=self.width, max_text_len=self.max_text_len, length=length,
                         pad_token_id=self.tokenizer.pad_id if self.tokenizer else 0)

  def collate(self, examples: Sequence[dict | None], length: int
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    return self.collate_rows(self.rows(examples), length)


def frames_dir(data: ml_collections.ConfigDict) -> str:
  """`data.frames_dir`; for the synthetic tube benchmark without one, its frames at
  `data.sample_fps` and short side `data.resolution` (generated and prepared if missing)."""
  if data.get('frames_dir') or data.get('dataset') != 'synthetic_tubes':
    return data.frames_dir
  from jaxvg.prepare.stvg_frames import ensure_synthetic_tube_frames
  return ensure_synthetic_tube_frames(
      data.get('synthetic_root', ''), data.get('synthetic_size', 'default'),
      sample_fps=data.sample_fps, short_side=data.resolution,
      max_ratio=data.max_size / data.resolution)


def tokenizer_folder(data: ml_collections.ConfigDict) -> str:
  """`data.tokenizer`: a weight folder (tokenizer.json, or vocab.json + merges.txt), or
  'synthetic_tubes' for the synthetic benchmark's own (trained on first use)."""
  if data.tokenizer == 'synthetic_tubes':
    from jaxvg.text.synthetic_vocab import ensure_synthetic_tube_tokenizer
    return ensure_synthetic_tube_tokenizer(data.get('synthetic_root', ''))
  return data.tokenizer
