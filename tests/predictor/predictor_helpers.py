"""Helpers of the predictor tests: the synthetic config, mp4 writing, a video with a known event."""
import pathlib

import numpy as np

from jaxvg_testing import ROOT, load_config

EVENT = {'kind': 'appear', 'start': 3, 'end': 6}   # clips; 2 s each at 0.5 fps
EVENT_QUERY = 'a red circle appears'
NUM_CLIPS = 8


REPO = ROOT


def synthetic_config(size: str, system: str = 'r2tuning'):
  return load_config(f'{system}/synthetic.py:{size}')


def write_mp4(frames: np.ndarray, path: pathlib.Path, seconds_per_frame: float = 2.0,
              rate: int = 2) -> pathlib.Path:
  """(T, H, W, 3) uint8 -> an H.264 mp4 showing each frame for `seconds_per_frame`."""
  import av
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('libx264', rate=rate)
    stream.height, stream.width = frames.shape[1:3]
    stream.pix_fmt = 'yuv420p'
    for frame in frames:
      for _ in range(int(round(seconds_per_frame * rate))):
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
          container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return path


def event_objects() -> list[dict]:
  """A red circle appearing over clips 3-5 (6-12 s) beside a static blue square."""
  return [{'colour': 'red', 'shape': 'circle', 'y': 48, 'x': 112.0, 'event': dict(EVENT)},
          {'colour': 'blue', 'shape': 'square', 'y': 176, 'x': 54.0}]
