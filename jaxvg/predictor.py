"""Ground text queries in your own video: `jaxvg.Predictor`, and `--mode predict --video --query`.

    predictor = jaxvg.Predictor.from_workdir('runs/synthetic')
    video = predictor.encode_video('clip.mp4')          # decoded and encoded once
    rows = predictor.predict(['a red circle appears', 'the blue square grows'], video)

`Predictor` is the same for every system: it restores a checkpoint's parameters only (the run's
`latest` / `best`, or a released checkpoint file; never optimiser state) and hands them to the
task's video predictor (`Task.video_predictor`, e.g. `jaxvg.projects.r2tuning.predictor`), which
owns decoding, encoding, grounding, plotting and text output.
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import ml_collections
from etils import epath

from jaxvg.errors import UserError


class InputError(UserError):
  """A bad video or query; the CLI prints its message on one line and exits with code 2."""


def probe_video(path: str) -> float | None:
  """Checks that `path` is a video with at least one frame, cheaply (no full decode).

  Returns the duration in seconds the container claims (None if it does not say); raises
  InputError for a missing file, an unreadable file or a video without frames.
  """
  import av
  if not os.path.isfile(path):
    raise InputError(f'{path}: no such video file')
  if os.path.getsize(path) == 0:
    raise InputError(f'{path}: the video has zero length (an empty file)')
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise InputError(f'{path}: no video stream (an empty video, or audio only)')
      stream = container.streams.video[0]
      if next(container.decode(stream), None) is None:
        raise InputError(f'{path}: the video has zero length (no frames)')
      if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
      if container.duration is not None:
        return container.duration / av.time_base
      return None
  except av.error.FFmpegError as e:
    raise InputError(f'{path}: not a readable video ({e})') from None


class Predictor:
  """A trained model of any task with a video predictor, on one device.

  Args:
    config: the experiment config the checkpoint was trained with.
    workdir: run directory holding `checkpoints/{latest,best}` (not needed for a released file).
    checkpoint: 'latest', 'best', or the path of a released (official) checkpoint.
    **options: the task's video-predictor options (R²-Tuning: `clip_path`, `fps`).
  Attribute access falls through to the task's video predictor (`encode_video`, `predict`, …).
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: str | None = None,
               checkpoint: str = 'latest', **options: Any):
    import jax
    from jaxvg import registry
    from jaxvg.train import trainer
    task = registry.get_task(config.task)
    if task.video_predictor is None:
      raise UserError(f'task {task.name!r} has no video predictor')
    run = trainer.build_run(config, devices=jax.devices()[:1])
    self.impl = task.video_predictor(run, trainer.restore_params(run, workdir, checkpoint),
                                     **options)

  def __getattr__(self, name: str) -> Any:
    return getattr(self.__dict__['impl'], name)

  @classmethod
  def from_workdir(cls, workdir: str, checkpoint: str = 'latest', **options: Any
                   ) -> 'Predictor':
    """The run in `workdir`, with the config the trainer wrote to `<workdir>/config.json`."""
    path = epath.Path(workdir) / 'config.json'
    if not path.exists():
      raise InputError(f'{path} not found: is {workdir!r} a jaxvg run directory?')
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
    for key, value in config.data.items():     # JSON turned tuples into lists
      if isinstance(value, list):
        config.data[key] = tuple(value)
    return cls(config, workdir, checkpoint, **options)


def main(config: ml_collections.ConfigDict, workdir: str | None, video: str,
         queries: Sequence[str], checkpoint: str = 'latest') -> None:
  """`--mode predict --video V --query Q...`: prints the predictions, writes
  `<workdir>/predictions/<video>.json` and a plot. Bad videos and queries raise `InputError`
  before the model is built, and nothing is written."""
  from jaxvg import registry
  task = registry.get_task(config.task)
  if task.video_predictor is None:
    raise UserError(f'task {task.name!r} has no video predictor')
  if not queries:
    raise InputError('no --query given')
  task.video_predictor.check_queries(queries)
  probe_video(video)
  predictor = Predictor(config, workdir, checkpoint)
  encoded = predictor.encode_video(video)
  rows = predictor.predict(list(queries), encoded)
  out_dir = epath.Path(workdir or '.') / 'predictions'
  out_dir.mkdir(parents=True, exist_ok=True)
  json_path = out_dir / f'{encoded.vid}.json'
  json_path.write_text(json.dumps(rows, indent=1))
  png_path = predictor.plot(rows, encoded, out_dir / f'{encoded.vid}.png')
  print(predictor.describe(rows, encoded))
  print(f'wrote {json_path} and {png_path}')
