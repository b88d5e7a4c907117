"""Pre-decoded frames: one 224x224 RGB frame per clip, stored in ArrayRecord files.

Decoding follows the official `tools/extract_frames.py` (ffmpeg): frames at the dataset fps, short
side scaled to 224 (bicubic, as ffmpeg's `scale`), centre crop 224x224, RGB uint8, one frame per
clip, T = #{t : t/fps < video end}. Which frame represents clip t (`sampling`):
  'ffmpeg'  what ffmpeg's `fps` filter (round=near) picks: the last frame before (t + 0.5)/fps,
            i.e. near the clip centre. This is what the official frames (and so the official
            cached features) contain, so it is the default;
  'start'   the frame shown at t/fps, the start of the clip.

Layout of a frames directory (one file per video, so writing is parallel and resumable):

  <root>/videos/<vid>.array_record   record i: frame i as a serialized tf.train.Example (TFDS's
                                     proto): `image` JPEG bytes, or `image/value` raw H*W*3 bytes
                                     with `image/shape`; `vid`, `index` (i) and `frame_id` (the
                                     frame's raw index in the source video, -1 if not kept)
  <root>/videos/<vid>.json           header {vid, fps, num_frames, format, height, width[,
                                     frame_ids]}, written before the frames file appears
  <root>/index.json                  {vid: entry} (derived; rebuilt by `build_index`)
  <root>/tfds/                       TFDS metadata and one link per video file (`tfds_frames`),
                                     so `tfds.builder_from_directory(<root>/tfds)
                                     .as_data_source()['full']` reads the same files
Files of the first layout (record 0 a JSON header, then raw frame bytes) are still read.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from typing import Iterable

import numpy as np
from array_record.python import array_record_module

FRAME_SIZE = 224
FORMATS = ('jpeg', 'raw')
VIDEOS_DIR = 'videos'
INDEX_FILE = 'index.json'
_TIME_EPS = 1e-4  # seconds; absorbs timestamp rounding of frames that sit exactly on t/fps.


def _video_file(root: str, vid: str) -> str:
  if '/' in vid or vid.startswith('.'):
    raise ValueError(f'video id {vid!r} cannot be used as a file name')
  return os.path.join(root, VIDEOS_DIR, f'{vid}.array_record')


# ---------------------------------------------------------------------------------------------
# Decoding.


def resize_crop(frame, size: int = FRAME_SIZE) -> np.ndarray:
  """av.VideoFrame -> (size, size, 3) uint8: short side to `size` (bicubic), centre crop."""
  w, h = frame.width, frame.height
  if w > h:
    w, h = int(w * size / h), size
  else:
    w, h = size, int(h * size / w)
  rgb = frame.reformat(width=w, height=h, format='rgb24', interpolation='BICUBIC').to_ndarray()
  x, y = (w - size) // 2, (h - size) // 2
  return np.ascontiguousarray(rgb[y:y + size, x:x + size])


SAMPLINGS = ('start', 'ffmpeg')


def _supersedes(time: float, clip: int, fps: float, sampling: str) -> bool:
  """Whether a frame at `time` may represent `clip` (so the earlier frame may not be final)."""
  if sampling == 'start':
    return time <= clip / fps + _TIME_EPS
  return time < (clip + 0.5) / fps - 1e-9  # ffmpeg rounds ties away from zero.


def decode_video(path: str, fps: float, size: int = FRAME_SIZE,
                 sampling: str = 'ffmpeg') -> np.ndarray:
  """Decodes `path` with PyAV into (T, size, size, 3) uint8, one frame per clip (see module)."""
  import av  # Heavy import; only the preparation step needs it.
  if not fps > 0:
    raise ValueError(f'{path}: fps must be positive, got {fps}')
  if sampling not in SAMPLINGS:
    raise ValueError(f'unknown sampling {sampling!r}; one of {SAMPLINGS}')
  out: list[np.ndarray] = []
  with av.open(path) as container:
    stream = container.streams.video[0]
    stream.thread_type = 'AUTO'
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    prev, prev_time, prev_rgb = None, 0.0, None
    for index, frame in enumerate(container.decode(stream)):
      time = frame.time if frame.time is not None else index / rate
      # Every pending target before this frame's time shows the previous frame.
      while prev is not None and not _supersedes(time, len(out), fps, sampling):
        prev_rgb = prev_rgb if prev_rgb is not None else resize_crop(prev, size)
        out.append(prev_rgb)
      if prev is None or time > prev_time:
        prev, prev_time, prev_rgb = frame, time, None
    if prev is None:
      raise ValueError(f'{path}: no decodable video frame')
    end = prev_time + 1.0 / rate
    while len(out) / fps + _TIME_EPS < end:
      prev_rgb = prev_rgb if prev_rgb is not None else resize_crop(prev, size)
      out.append(prev_rgb)
  return np.stack(out)


# ---------------------------------------------------------------------------------------------
# Encoding and storage.


def encode_frame(frame: np.ndarray, fmt: str, quality: int = 95) -> bytes:
  if fmt == 'raw':
    return np.ascontiguousarray(frame, np.uint8).tobytes()
  from PIL import Image
  buf = io.BytesIO()
  Image.fromarray(frame).save(buf, format='JPEG', quality=quality)
  return buf.getvalue()


def decode_frame(data: bytes, fmt: str, height: int, width: int | None = None) -> np.ndarray:
  if fmt == 'raw':
    return np.frombuffer(data, np.uint8).reshape(height, width or height, 3)
  from PIL import Image
  return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))


def frame_example(vid: str, index: int, frame_id: int, frame: np.ndarray, fmt: str) -> bytes:
  """One frame as a serialized tf.train.Example in the layout `tfds_features(fmt)` parses."""
  from tensorflow_datasets.proto import tf_example_pb2
  example = tf_example_pb2.Example()
  feature = example.features.feature
  if fmt == 'raw':
    feature['image/value'].bytes_list.value.append(encode_frame(frame, fmt))
    feature['image/shape'].int64_list.value.extend(frame.shape)
  else:
    feature['image'].bytes_list.value.append(encode_frame(frame, fmt))
  feature['vid'].bytes_list.value.append(vid.encode())
  feature['index'].int64_list.value.append(index)
  feature['frame_id'].int64_list.value.append(frame_id)
  return example.SerializeToString()


def parse_frame_example(data: bytes, fmt: str) -> np.ndarray:
  """The frame of a `frame_example` record."""
  from tensorflow_datasets.proto import tf_example_pb2
  feature = tf_example_pb2.Example.FromString(data).features.feature
  if fmt == 'raw':
    shape = tuple(feature['image/shape'].int64_list.value)
    return np.frombuffer(feature['image/value'].bytes_list.value[0], np.uint8).reshape(shape)
  return decode_frame(feature['image'].bytes_list.value[0], fmt, 0)


def write_video(root: str, vid: str, frames: np.ndarray, fps: float, fmt: str = 'jpeg',
                frame_ids: np.ndarray | None = None) -> dict:
  """Writes (T, H, W, 3) uint8 frames of `vid` atomically; returns its index entry.

  `frame_ids` (T,) are the raw indices of the frames in the source video (kept for STVG, where
  boxes are annotated per raw frame); `fps` the rate the frames were sampled at.
  """
  if fmt not in FORMATS:
    raise ValueError(f'unknown frame format {fmt!r}; one of {FORMATS}')
  if frames.ndim != 4 or frames.shape[3] != 3:
    raise ValueError(f'{vid}: frames must be (T, H, W, 3), got {frames.shape}')
  if frame_ids is not None and len(frame_ids) != len(frames):
    raise ValueError(f'{vid}: {len(frame_ids)} frame ids for {len(frames)} frames')
  path = _video_file(root, vid)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  header = {'vid': vid, 'fps': float(fps), 'num_frames': int(frames.shape[0]), 'format': fmt,
            'height': int(frames.shape[1]), 'width': int(frames.shape[2]), 'layout': 'example'}
  if frame_ids is not None:
    header['frame_ids'] = [int(f) for f in frame_ids]
  with open(path[:-len('.array_record')] + '.json', 'w') as f:
    json.dump(header, f)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
  os.close(fd)
  try:
    options = 'group_size:1,' + ('uncompressed' if fmt == 'jpeg' else 'zstd:1')
    writer = array_record_module.ArrayRecordWriter(tmp, options)
    ids = header.get('frame_ids', [-1] * len(frames))
    for i, frame in enumerate(frames):
      writer.write(frame_example(vid, i, ids[i], frame, fmt))
    writer.close()
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return _entry(header)


def _entry(header: dict) -> dict:
  entry = {'file': f'{VIDEOS_DIR}/{header["vid"]}.array_record', 'fps': header['fps'],
           'num_frames': header['num_frames'], 'format': header['format'],
           'height': header.get('height', header.get('size')),
           'width': header.get('width', header.get('size')),
           'layout': header.get('layout', 'header')}
  if 'frame_ids' in header:
    entry['frame_ids'] = header['frame_ids']
  return entry


def read_header(path: str) -> dict:
  """The video's header: its `.json` beside the frames file, or record 0 of the first layout."""
  sidecar = path[:-len('.array_record')] + '.json'
  if os.path.exists(sidecar):
    with open(sidecar) as f:
      return json.load(f)
  reader = array_record_module.ArrayRecordReader(path, 'readahead_buffer_size:0')
  try:
    return json.loads(reader.read([0])[0])
  finally:
    reader.close()


def done_videos(root: str) -> set[str]:
  """Video ids whose frame file is complete (files appear only after a finished write)."""
  directory = os.path.join(root, VIDEOS_DIR)
  if not os.path.isdir(directory):
    return set()
  return {f[:-len('.array_record')] for f in os.listdir(directory) if f.endswith('.array_record')}


def build_index(root: str) -> dict[str, dict]:
  """Rebuilds `<root>/index.json` from the file headers and returns it."""
  index = {}
  for vid in sorted(done_videos(root)):
    index[vid] = _entry(read_header(_video_file(root, vid)))
  fd, tmp = tempfile.mkstemp(dir=root, suffix='.tmp')
  with os.fdopen(fd, 'w') as f:
    json.dump(index, f)
  os.replace(tmp, os.path.join(root, INDEX_FILE))
  if index and all(e['layout'] == 'example' for e in index.values()):
    from jaxvg.data import tfds_frames
    tfds_frames.write_metadata(root, index)
  return index


class FrameReader:
  """Random access to pre-decoded frames: `keys()`, `read(vid)`, `fps(vid)`.

  Picklable (open files are not carried across processes), so Grain workers can hold one.
  """

  def __init__(self, path: str):
    self.path = path
    index_path = os.path.join(path, INDEX_FILE)
    if os.path.exists(index_path):
      with open(index_path) as f:
        self._index = json.load(f)
    elif os.path.isdir(os.path.join(path, VIDEOS_DIR)):
      self._index = {vid: _entry(read_header(_video_file(path, vid)))
                     for vid in sorted(done_videos(path))}
    else:
      raise FileNotFoundError(f'{path!r} is not a frames directory (no {INDEX_FILE})')

  def keys(self) -> list[str]:
    return list(self._index)

  def __contains__(self, vid: str) -> bool:
    return vid in self._index

  def _meta(self, vid: str) -> dict:
    if vid not in self._index:
      raise KeyError(f'video {vid!r} not in frames directory {self.path!r}')
    return self._index[vid]

  def fps(self, vid: str) -> float:
    return float(self._meta(vid)['fps'])

  def num_frames(self, vid: str) -> int:
    return int(self._meta(vid)['num_frames'])

  def frame_ids(self, vid: str) -> np.ndarray | None:
    """(T,) raw frame index in the source video of every stored frame, if recorded."""
    ids = self._meta(vid).get('frame_ids')
    return None if ids is None else np.asarray(ids, np.int64)

  def read(self, vid: str, num_frames: int | None = None) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of `vid` (the first `num_frames` if given)."""
    meta = self._meta(vid)
    count = meta['num_frames'] if num_frames is None else min(num_frames, meta['num_frames'])
    offset = 0 if meta.get('layout') == 'example' else 1   # the first layout's header record
    reader = array_record_module.ArrayRecordReader(
        os.path.join(self.path, meta['file']), 'readahead_buffer_size:0,max_parallelism:0')
    try:
      records = reader.read(offset, count + offset) if count else []
    finally:
      reader.close()
    height = meta.get('height', meta.get('size'))   # index.json of the first layout: 'size'
    width = meta.get('width', height)
    out = np.empty((count, height, width, 3), np.uint8)
    for i, data in enumerate(records):
      out[i] = (parse_frame_example(data, meta['format']) if offset == 0 else
                decode_frame(data, meta['format'], height, width))
    return out


def iter_video_files(directory: str, exts: Iterable[str] = ('mp4', 'mkv', 'avi', 'webm', 'mov')
                     ) -> list[str]:
  exts = tuple('.' + e for e in exts)
  return sorted(os.path.join(directory, f) for f in os.listdir(directory)
                if f.lower().endswith(exts))
