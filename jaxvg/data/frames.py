"""Pre-decoded frames: one 224x224 RGB frame per clip, stored in ArrayRecord files.

Decoding follows the official `tools/extract_frames.py` (ffmpeg): frames at the dataset fps, short
side scaled to 224 (bicubic, as ffmpeg's `scale`), centre crop 224x224, RGB uint8, one frame per
clip, T = #{t : t/fps < video end}. Which frame represents clip t (`sampling`):
  'ffmpeg'  what ffmpeg's `fps` filter (round=near) picks: the last frame before (t + 0.5)/fps,
            i.e. near the clip centre. This is what the official frames (and so the official
            cached features) contain, so it is the default;
  'start'   the frame shown at t/fps, the start of the clip.

Layout of a frames directory (one file per video, so writing is parallel and resumable):

  <root>/videos/<vid>.array_record   record 0: JSON header {vid, fps, num_frames, format, size};
                                     records 1..T: one frame each (JPEG bytes, or raw H*W*3 bytes)
  <root>/index.json                  {vid: {file, fps, num_frames, format}} (derived; rebuilt by
                                     `build_index` from the headers)
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


def decode_frame(data: bytes, fmt: str, size: int) -> np.ndarray:
  if fmt == 'raw':
    return np.frombuffer(data, np.uint8).reshape(size, size, 3)
  from PIL import Image
  return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))


def write_video(root: str, vid: str, frames: np.ndarray, fps: float, fmt: str = 'jpeg') -> dict:
  """Writes (T, S, S, 3) uint8 frames of `vid` atomically; returns its index entry."""
  if fmt not in FORMATS:
    raise ValueError(f'unknown frame format {fmt!r}; one of {FORMATS}')
  if frames.ndim != 4 or frames.shape[1] != frames.shape[2] or frames.shape[3] != 3:
    raise ValueError(f'{vid}: frames must be (T, S, S, 3), got {frames.shape}')
  path = _video_file(root, vid)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  header = {'vid': vid, 'fps': float(fps), 'num_frames': int(frames.shape[0]), 'format': fmt,
            'size': int(frames.shape[1])}
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
  os.close(fd)
  try:
    options = 'group_size:1,' + ('uncompressed' if fmt == 'jpeg' else 'zstd:1')
    writer = array_record_module.ArrayRecordWriter(tmp, options)
    writer.write(json.dumps(header).encode())
    for frame in frames:
      writer.write(encode_frame(frame, fmt))
    writer.close()
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return _entry(header)


def _entry(header: dict) -> dict:
  return {'file': f'{VIDEOS_DIR}/{header["vid"]}.array_record', 'fps': header['fps'],
          'num_frames': header['num_frames'], 'format': header['format'], 'size': header['size']}


def read_header(path: str) -> dict:
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

  def read(self, vid: str, num_frames: int | None = None) -> np.ndarray:
    """(T, 224, 224, 3) uint8 frames of `vid` (the first `num_frames` if given)."""
    meta = self._meta(vid)
    count = meta['num_frames'] if num_frames is None else min(num_frames, meta['num_frames'])
    reader = array_record_module.ArrayRecordReader(
        os.path.join(self.path, meta['file']), 'readahead_buffer_size:0,max_parallelism:0')
    try:
      records = reader.read(1, count + 1) if count else []
    finally:
      reader.close()
    size = meta['size']
    out = np.empty((count, size, size, 3), np.uint8)
    for i, data in enumerate(records):
      out[i] = decode_frame(data, meta['format'], size)
    return out


def iter_video_files(directory: str, exts: Iterable[str] = ('mp4', 'mkv', 'avi', 'webm', 'mov')
                     ) -> list[str]:
  exts = tuple('.' + e for e in exts)
  return sorted(os.path.join(directory, f) for f in os.listdir(directory)
                if f.lower().endswith(exts))
