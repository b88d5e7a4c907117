"""Offline CLIP feature extraction into the official R²-Tuning cache layout.

  <out>/clip_b32_vid_k4/<vid>.npy   (T, K, P, Dv) float16   last K vision block outputs
  <out>/clip_b32_txt_k4/<qid>.npy   (L, K, Dq)    float16   last K text block outputs, ids != 0

Frames of consecutive videos are packed into fixed-size batches (the last one padded), so one
compiled program serves every video; the batch is split over all devices on a 1-D mesh. Outputs
go to a temporary name and are renamed when complete, so an interrupted run resumes by skipping
what exists.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
from typing import Any, Callable, Iterable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm import tqdm

from jaxvg.clip.tokenizer import tokenize
from jaxvg.modules.clip import CLIP, encode_text_layers, encode_video_layers


def cache_dir_name(arch_name: str, kind: str, num_layers: int) -> str:
  """'ViT-B/32', 'vid', 4 -> 'clip_b32_vid_k4' (the official folder names)."""
  short = arch_name.lower().replace('vit-', '').replace('/', '').replace('-', '_')
  return f'clip_{short}_{kind}_k{num_layers}'


@dataclasses.dataclass
class BatchedEncoder:
  """Runs a frozen tower over host arrays in fixed-size, device-sharded batches."""
  fn: Callable[[Any, jax.Array], jax.Array]
  params: Any
  batch_size: int
  sharding: NamedSharding

  @classmethod
  def create(cls, encode: Callable[..., jax.Array], model: CLIP, params: Any, num_layers: int,
             batch_size: int) -> 'BatchedEncoder':
    devices = jax.devices()
    mesh = Mesh(np.array(devices), ('data',))
    batch_size = -(-batch_size // len(devices)) * len(devices)  # a multiple of the devices
    sharding = NamedSharding(mesh, PartitionSpec('data'))
    replicated = NamedSharding(mesh, PartitionSpec())
    fn = jax.jit(lambda p, x: encode(model, p, x, num_layers),
                 in_shardings=(replicated, sharding), out_shardings=sharding)
    return cls(fn, jax.device_put(params, replicated), batch_size, sharding)

  def __call__(self, inputs: np.ndarray) -> np.ndarray:
    """(n <= batch_size, ...) -> (n, ...) float16 outputs; pads to the static batch size."""
    n = len(inputs)
    padded = np.zeros((self.batch_size,) + inputs.shape[1:], inputs.dtype)
    padded[:n] = inputs
    out = self.fn(self.params, jax.device_put(padded, self.sharding))
    return np.asarray(out.astype(jnp.float16))[:n]


def encode_videos(videos: Iterable[tuple[str, np.ndarray]], encoder: BatchedEncoder
                  ) -> Iterator[tuple[str, np.ndarray]]:
  """(vid, (T, H, W, 3) uint8) -> (vid, (T, K, P, Dv) float16), frames packed across videos."""
  pending: list[tuple[str, np.ndarray]] = []   # videos whose frames are queued, in order
  queued: list[np.ndarray] = []                # frames not yet encoded
  done: list[np.ndarray] = []                  # encoded frames not yet handed out

  def flush(final: bool) -> Iterator[tuple[str, np.ndarray]]:
    while queued and (final or sum(map(len, queued)) >= encoder.batch_size):
      frames = np.concatenate(queued)
      batch, rest = frames[:encoder.batch_size], frames[encoder.batch_size:]
      queued[:] = [rest] if len(rest) else []
      ready = np.concatenate(done + [encoder(batch)])
      while pending and len(ready) >= len(pending[0][1]):
        vid, video = pending.pop(0)
        yield vid, ready[:len(video)]
        ready = ready[len(video):]
      done[:] = [ready] if len(ready) else []

  for vid, frames in videos:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
      raise ValueError(f'video {vid!r}: expected (T > 0, H, W, 3) uint8 frames, got '
                       f'{frames.shape} {frames.dtype}')
    pending.append((vid, frames))
    queued.append(frames)
    yield from flush(final=False)
  yield from flush(final=True)


def encode_queries(queries: Iterable[tuple[str, str]], encoder: BatchedEncoder
                   ) -> Iterator[tuple[str, np.ndarray]]:
  """(qid, text) -> (qid, (L, K, Dq) float16) over the non-zero token ids (SOT ... EOT)."""
  queries = list(queries)
  for start in range(0, len(queries), encoder.batch_size):
    chunk = queries[start:start + encoder.batch_size]
    tokens = tokenize([text for _, text in chunk])
    features = encoder(tokens)                            # (n, 77, K, Dq)
    for (qid, _), ids, feats in zip(chunk, tokens, features):
      yield qid, feats[:int((ids != 0).sum())]


class NpyWriter:
  """One `<key>.npy` per item; written to a temporary name, then renamed (resume-safe)."""

  def __init__(self, directory: str):
    self.directory = directory
    os.makedirs(directory, exist_ok=True)

  def done(self) -> set[str]:
    return {f[:-4] for f in os.listdir(self.directory) if f.endswith('.npy')}

  def write(self, key: str, array: np.ndarray) -> None:
    path = os.path.join(self.directory, f'{key}.npy')
    tmp = f'{path}.tmp'
    with open(tmp, 'wb') as f:
      np.save(f, array)
    os.replace(tmp, path)

  def close(self) -> None:
    pass


class ArrayRecordWriter:
  """Records `<key>\\0<npy bytes>` in `part-NNNNN.array_record`, one part per run.

  The part and its key index (`part-NNNNN.json`) appear under their final names only on close,
  so a resumed run skips exactly the keys of completed parts.
  """

  def __init__(self, directory: str):
    from array_record.python.array_record_module import ArrayRecordWriter as Writer
    self.directory = directory
    os.makedirs(directory, exist_ok=True)
    part = len([f for f in os.listdir(directory) if f.endswith('.json')])
    self.path = os.path.join(directory, f'part-{part:05d}.array_record')
    self._writer = Writer(f'{self.path}.tmp', 'group_size:1')
    self._keys: list[str] = []

  def done(self) -> set[str]:
    keys: set[str] = set()
    for f in os.listdir(self.directory):
      if f.endswith('.json'):
        with open(os.path.join(self.directory, f)) as index:
          keys.update(json.load(index))
    return keys

  def write(self, key: str, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    self._writer.write(key.encode() + b'\0' + buffer.getvalue())
    self._keys.append(key)

  def close(self) -> None:
    self._writer.close()
    os.replace(f'{self.path}.tmp', self.path)
    with open(self.path[:-len('.array_record')] + '.json', 'w') as f:
      json.dump(self._keys, f)


def read_array_record(path: str) -> dict[str, np.ndarray]:
  """All records of one part written by ArrayRecordWriter: key -> array."""
  from array_record.python.array_record_module import ArrayRecordReader
  reader = ArrayRecordReader(path)
  out = {}
  for record in reader.read_all():
    key, payload = record.split(b'\0', 1)
    out[key.decode()] = np.load(io.BytesIO(payload))
  reader.close()
  return out


WRITERS = {'npy': NpyWriter, 'array_record': ArrayRecordWriter}


def extract_videos(keys: list[str], read: Callable[[str], np.ndarray], out_dir: str,
                   encoder: BatchedEncoder, fmt: str = 'npy') -> int:
  """Encodes the videos of `keys` not yet in out_dir; frames = read(vid), read lazily so skipped
  videos are never loaded. Returns how many were written."""
  writer = WRITERS[fmt](out_dir)
  done = writer.done()
  todo = [vid for vid in keys if vid not in done]
  try:
    for vid, features in tqdm(encode_videos(((vid, read(vid)) for vid in todo), encoder),
                              total=len(todo), desc='videos'):
      writer.write(vid, features)
  finally:
    writer.close()
  return len(todo)


def extract_queries(queries: list[tuple[str, str]], out_dir: str, encoder: BatchedEncoder,
                    fmt: str = 'npy') -> int:
  """Encodes the queries not yet in out_dir; returns how many were written."""
  writer = WRITERS[fmt](out_dir)
  done = writer.done()
  todo = [(qid, text) for qid, text in queries if qid not in done]
  try:
    for qid, features in tqdm(encode_queries(todo, encoder), total=len(todo), desc='queries'):
      writer.write(qid, features)
  finally:
    writer.close()
  return len(todo)


def video_encoder(model: CLIP, params: Any, num_layers: int, batch_size: int) -> BatchedEncoder:
  return BatchedEncoder.create(encode_video_layers, model, params, num_layers, batch_size)


def text_encoder(model: CLIP, params: Any, num_layers: int, batch_size: int) -> BatchedEncoder:
  return BatchedEncoder.create(encode_text_layers, model, params, num_layers, batch_size)
