"""Helpers of the predictor tests: the synthetic config, mp4 writing, a video with a known event,
and running the notebooks."""
import pathlib

import numpy as np

from jaxvg_testing import ROOT, load_config

EVENT = {'kind': 'appear', 'start': 3, 'end': 6}   # clips; 2 s each at 0.5 fps
EVENT_QUERY = 'a red circle appears'
NUM_CLIPS = 8


REPO = ROOT


def notebook_code_cells(name: str) -> list:
  """The committed notebook's code cells (outputs must be stripped before committing)."""
  import nbformat
  notebook = nbformat.read(REPO / 'notebooks' / name, as_version=4)
  return [c for c in notebook.cells if c.cell_type == 'code']


def run_notebook(name: str, monkeypatch, *, cache_dir: pathlib.Path, workdir: pathlib.Path,
                 timeout: int) -> tuple[list[dict], str]:
  """Executes notebooks/NAME in its CI variant (JAXVG_NOTEBOOK_CI=1) on the session's synthetic
  data; returns every code output and their text joined."""
  import nbformat
  from nbclient import NotebookClient
  monkeypatch.setenv('JAXVG_NOTEBOOK_CI', '1')
  monkeypatch.setenv('JAXVG_NOTEBOOK_WORKDIR', str(workdir))
  monkeypatch.setenv('JAXVG_CACHE', str(cache_dir))
  notebook = nbformat.read(REPO / 'notebooks' / name, as_version=4)
  NotebookClient(notebook, timeout=timeout, kernel_name='python3',
                 resources={'metadata': {'path': str(REPO / 'notebooks')}}).execute()
  outputs = [o for c in notebook.cells if c.cell_type == 'code' for o in c.outputs]
  return outputs, '\n'.join(o.get('text', '') for o in outputs)


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
