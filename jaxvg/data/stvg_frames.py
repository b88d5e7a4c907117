"""Frames for spatio-temporal grounding: which raw frames to keep; resizing without a crop.

Boxes are annotated per raw (decoded) frame, so every stored frame keeps its raw index
(`FrameReader.frame_ids`) and boxes map exactly. The sampling rules are the official CG-STVG ones
(`datasets/data_utils.py`):
  fps      HC-STVG: over the raw frames, keep frame f when int(f * r) exceeds int(g * r) of the last
           kept frame g, r = sample_fps / video_fps; frame 0 and the last frame always kept
           (train 3.2, test 2 x 3.2 = 6.4 frames per second);
  uniform  VidSTG: N frames at int(linspace(0, L - 1, N)) of the L frames of the used segment (all
           of them when L <= N).
Frames are resized so that the short side is `short_side` and the long side at most
`max_ratio` x short side (CG-STVG: 420 and 1.4; the aspect ratio changes beyond it), without
cropping: normalised box coordinates are the same before and after.
"""
from __future__ import annotations

import numpy as np

INTERPOLATIONS = ('BILINEAR', 'BICUBIC', 'AREA')


def fps_sample_ids(frame_ids: np.ndarray, video_fps: float, sample_fps: float) -> np.ndarray:
  """The official HC-STVG rule (`make_hcstvg_input_clip`) over the candidate raw frames."""
  frame_ids = np.asarray(frame_ids, np.int64)
  rate = sample_fps / video_fps
  keep = [0]
  for i, frame in enumerate(frame_ids):
    if int(frame_ids[keep[-1]] * rate) < int(frame * rate):
      keep.append(i)
  if keep[-1] != len(frame_ids) - 1:
    keep.append(len(frame_ids) - 1)
  return frame_ids[keep]


def uniform_sample_ids(frame_ids: np.ndarray, num_samples: int) -> np.ndarray:
  """The official VidSTG rule (`make_vidstg_input_clip`): N frames by int(linspace)."""
  frame_ids = np.asarray(frame_ids, np.int64)
  if len(frame_ids) <= num_samples:
    return frame_ids
  return frame_ids[np.linspace(0, len(frame_ids) - 1, num=num_samples).astype(np.int64)]


def sample_ids(segment: tuple[int, int], video_fps: float, *, sample_fps: float | None = None,
               num_samples: int | None = None) -> np.ndarray:
  """Raw frames kept from the half-open segment [begin, end), by exactly one of the two rules."""
  if (sample_fps is None) == (num_samples is None):
    raise ValueError('give exactly one of sample_fps and num_samples')
  candidates = np.arange(int(segment[0]), int(segment[1]))
  if sample_fps is not None:
    return fps_sample_ids(candidates, video_fps, sample_fps)
  return uniform_sample_ids(candidates, num_samples)


def resized_shape(height: int, width: int, short_side: int, max_ratio: float) -> tuple[int, int]:
  """(H', W') with the short side `short_side` and the long side min(int(short * ratio),
  int(short * max_ratio)), as CG-STVG's `Resize((420, min(int(420 * w / h), 588)))`."""
  if height <= width:
    return short_side, min(int(short_side * width / height), int(short_side * max_ratio))
  return min(int(short_side * height / width), int(short_side * max_ratio)), short_side


def scale_boxes(boxes: np.ndarray, size: tuple[int, int], new_size: tuple[int, int]) -> np.ndarray:
  """xyxy pixel boxes of a (H, W) frame -> the same boxes on the resized (H', W') frame."""
  (h, w), (nh, nw) = size, new_size
  return np.asarray(boxes, np.float64) * np.array([nw / w, nh / h, nw / w, nh / h])


def decode_frames_at(path: str, frame_ids: np.ndarray, short_side: int, max_ratio: float,
                     interpolation: str = 'BILINEAR') -> np.ndarray:
  """(T, H', W', 3) uint8 frames at the raw (decode-order) indices `frame_ids`, resized."""
  import av  # Heavy import; only the preparation step needs it.
  if interpolation not in INTERPOLATIONS:
    raise ValueError(f'interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}')
  wanted = {int(f): k for k, f in enumerate(frame_ids)}
  out: list[np.ndarray | None] = [None] * len(frame_ids)
  last = max(wanted) if wanted else -1
  with av.open(path) as container:
    stream = container.streams.video[0]
    stream.thread_type = 'AUTO'
    for index, frame in enumerate(container.decode(stream)):
      if index in wanted:
        height, width = resized_shape(frame.height, frame.width, short_side, max_ratio)
        out[wanted[index]] = frame.reformat(width=width, height=height, format='rgb24',
                                            interpolation=interpolation).to_ndarray()
      if index >= last:
        break
  missing = [int(f) for f, k in wanted.items() if out[k] is None]
  if missing:
    raise ValueError(f'{path}: video ends before raw frame {missing[0]}')
  return np.stack(out)
