"""Ground text queries in your own video: `jaxvg.Predictor`, and `--mode predict --video --query`.

    predictor = jaxvg.Predictor.from_workdir('runs/synthetic')
    video = predictor.encode_video('clip.mp4')          # decoded and encoded once
    rows = predictor.predict(['a red circle appears', 'the blue square grows'], video)

`Predictor` is the same for every system: it restores a checkpoint's parameters only (the run's
`latest` / `best`, or a released checkpoint file; never optimiser state) and hands them to the
task's video predictor (`Task.video_predictor`), which owns decoding, encoding, grounding,
plotting and text output.

`ClipVideoPredictor` is that video predictor for the temporal-grounding systems that read a
frozen CLIP's last K layers (R²-Tuning, SDST): a video decoded and CLIP-encoded once, any number
of queries grounded in one jitted call. The video is decoded as for training (PyAV, one frame per
clip at the dataset fps, short side to 224, centre crop) and run through the frozen CLIP once:
(T, K, P, Dv). The queries of one call are tokenized, padded to a static query bucket and grounded
in ONE jitted call (text tower + the model), the video padded to a static T bucket (the models are
padding-invariant). Rows are QVHighlights submission dicts (the task's own post-processing), so
they go straight into `jaxvg.evaluation.evaluate`. Inference runs on one device: a single video is
small, and splitting a handful of queries over a mesh would only add padding. A system subclasses
it to name the outputs its post-processing reads (`output_keys`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from etils import epath

from jaxvg.data.temporal import pick_bucket
from jaxvg.errors import UserError

QUERY_BUCKETS = (1, 4, 16)   # queries per jitted call; more are grounded 16 at a time
CALL_BUDGET = 2 ** 28        # video feature elements per call (queries x T x K x P x Dv): 1 GiB
FRAME_CHUNK = 16             # frames per jitted CLIP call when encoding a video
THUMBNAIL_STRIDE = 2         # thumbnails kept for the plot: 224 / 2 = 112 pixels


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


@dataclasses.dataclass(frozen=True)
class EncodedVideo:
  """One video decoded and encoded once; reusable by any number of `predict` calls.

  Attributes:
    path: the video file.
    features: (T, K, P, Dv) float32 frozen-CLIP features, one row per clip.
    thumbnails: (T, 112, 112, 3) uint8 clip frames, for plots.
    duration: seconds (the end of the last frame).
    fps: clips per second (the dataset's fps).
  """
  path: str
  features: np.ndarray
  thumbnails: np.ndarray
  duration: float
  fps: float

  @property
  def vid(self) -> str:
    return pathlib.Path(self.path).stem

  @property
  def num_clips(self) -> int:
    return int(self.features.shape[0])


def _time_buckets(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """The config's T buckets, then steps of x1.5 / x2 from the largest up to model.max_num_clips
  (at most a third of a call is padding; few programs to compile)."""
  limit = int(config.model.max_num_clips)
  buckets = {b for b in config.data.t_buckets if b <= limit} | {limit}
  size = max(config.data.t_buckets)
  while size < limit:
    buckets |= {b for b in (size, size * 3 // 2) if b < limit}
    size *= 2
  return tuple(sorted(buckets))


def count_tokens(query: str) -> int:
  """CLIP tokens of `query` including the start and end tokens (the context holds 77)."""
  from jaxvg.clip.tokenizer import default_tokenizer
  tokenizer = default_tokenizer()
  return len(tokenizer.encode(query)) + 2


def check_query(query: Any) -> str:
  """Returns the query, or raises InputError if it is empty or longer than CLIP's context."""
  from jaxvg.clip.tokenizer import CONTEXT_LENGTH
  if not isinstance(query, str) or not query.strip():
    raise InputError(f'empty query {query!r}: give a sentence describing the moment')
  n = count_tokens(query)
  if n > CONTEXT_LENGTH:
    raise InputError(f'query is {n} CLIP tokens long (with start/end tokens); the limit is '
                     f'{CONTEXT_LENGTH}: shorten {query[:40]!r}...')
  return query


class ClipVideoPredictor:
  """A trained temporal-grounding model that reads a frozen CLIP's last K layers, plus that CLIP,
  on one device.

  Built by `jaxvg.Predictor`, which restores the parameters. `clip_path`: CLIP weight file
  (OpenAI .pt or HF safetensors), default `config.clip.path`; when both are empty the config's
  random-init CLIP (as the tiny synthetic config trains with). `fps`: clips per second, default
  the dataset's (`jaxvg.data.readers` spec). `model.max_num_clips` bounds the video length.
  """

  # The model outputs the task's post-processing reads (None: all of them); fewer leave the
  # device.
  output_keys: tuple[str, ...] | None = None

  def __init__(self, run, params: Any, clip_path: str | None = None, fps: float | None = None):
    from jaxvg import clip as clip_lib
    from jaxvg.data import readers
    config = ml_collections.ConfigDict(run.config.to_dict())
    fps = fps or readers.get_spec(config.data.dataset).fps
    if not fps:
      raise InputError(f'{config.data.dataset} has a per-video clip rate: pass fps=')
    self.fps = float(fps)
    if clip_path:
      config.clip.path = str(clip_path)
    self.config = config
    self.device = jax.devices()[0]
    self.params = jax.device_put(params, self.device)
    if run.frozen is not None and not clip_path:  # frames path: the CLIP it trained with
      clip_model = clip_lib.CLIP(clip_lib.get_arch(config.clip.arch))
      clip_params = run.frozen.params
    elif config.clip.path:
      clip_model, clip_params = clip_lib.load(config.clip.path)
    else:
      print('warning: no CLIP weights given (clip_path); using random-init CLIP '
            f'{config.clip.arch}: predictions are meaningless for a model trained on real '
            'CLIP features')
      clip_model, clip_params = clip_lib.init_random(config.clip.arch, seed=config.seed)
    arch = clip_model.arch
    if (arch.vision_width, arch.text_width) != (config.model.video_dims, config.model.query_dims):
      raise InputError(f'CLIP {arch.name} widths ({arch.vision_width}, {arch.text_width}) do '
                       f'not match model.video_dims/query_dims ({config.model.video_dims}, '
                       f'{config.model.query_dims})')
    self.clip_params = jax.device_put(clip_params, self.device)
    self.task = run.task
    self.t_buckets = _time_buckets(config)
    # The cache holds float16 features: round through it on the features path, as in training.
    self._feature_dtype = jnp.float16 if config.data.source == 'features' else jnp.float32
    self._encode_frames = jax.jit(self._make_encode_frames(clip_model))
    self._ground = jax.jit(self._make_ground(run.model, clip_model))
    self._cached: tuple[EncodedVideo, jax.Array, jax.Array] | None = None

  @staticmethod
  def check_queries(queries: Sequence[str]) -> None:
    """Raises `InputError` for an empty query or one longer than CLIP's context."""
    for query in queries:
      check_query(query)

  def plot(self, rows: list[dict], video: 'EncodedVideo', path) -> str:
    from jaxvg import plotting
    return plotting.plot_predictions(
        rows, video, path,
        temperature=self.config.loss.get('temperature', plotting.TEMPERATURE))

  def describe(self, rows: list[dict], video: 'EncodedVideo') -> str:
    return (f'{video.vid}: {video.duration:.1f} s, {video.num_clips} clips\n'
            + format_rows(rows))

  # ------------------------------------------------------------------------- jitted programs

  def _make_encode_frames(self, clip_model):
    from jaxvg.modules.clip import encode_video_layers
    num_layers, dtype = self.config.model.num_layers, self._feature_dtype

    def encode(clip_params, frames):                      # (N, 224, 224, 3) uint8
      out = encode_video_layers(clip_model, clip_params, frames, num_layers)
      return out.astype(dtype).astype(jnp.float32)       # (N, K, P, Dv)
    return encode

  def _make_ground(self, model, clip_model):
    from jaxvg.modules.clip import encode_text_layers
    from jaxvg.train.step import apply_model, compute_dtype
    num_layers, dtype = self.config.model.num_layers, compute_dtype(self.config)
    feature_dtype = self._feature_dtype
    keep = self.output_keys

    def ground(params, clip_params, video, video_mask, tokens):
      """video (1, T, K, P, Dv), video_mask (1, T), tokens (Q, 77) -> outputs with batch Q."""
      q = tokens.shape[0]
      query = encode_text_layers(clip_model, clip_params, tokens, num_layers)
      batch = {'video': jnp.broadcast_to(video, (q,) + video.shape[1:]),
               'video_mask': jnp.broadcast_to(video_mask, (q,) + video_mask.shape[1:]),
               'query': query.astype(feature_dtype).astype(jnp.float32),
               'query_mask': tokens != 0}
      outputs = apply_model(model, params, batch, train=False, dtype=dtype)
      return {k: v for k, v in outputs.items() if keep is None or k in keep}
    return ground

  # ------------------------------------------------------------------------- public API

  def encode_video(self, path: str | os.PathLike) -> EncodedVideo:
    """Decodes `path` at the dataset fps and encodes every clip with the frozen CLIP, once."""
    from jaxvg.data.frames import decode_video
    path = str(path)
    fps = self.fps
    limit = int(self.config.model.max_num_clips)
    claimed = probe_video(path)
    if claimed is not None and claimed * fps > limit + 1:  # fail before decoding for minutes
      raise InputError(self._too_long(path, claimed, fps, limit))
    try:
      frames = decode_video(path, fps, sampling='ffmpeg')
    except ValueError as e:  # decode_video: no frame at all
      raise InputError(f'{e}: the video has zero length or is corrupt') from None
    except Exception as e:  # PyAV raises many types for corrupt streams; report them as one.
      raise InputError(f'{path}: cannot decode the video ({type(e).__name__}: {e})') from None
    # The stream's duration if known, else the end of the clip grid.
    duration = min(claimed, frames.shape[0] / fps) if claimed else frames.shape[0] / fps
    if duration <= 0:
      raise InputError(f'{path}: the video has zero length')
    return self.encode_frames(frames, path, duration)

  def encode_frames(self, frames: np.ndarray, path: str = 'video', duration: float | None = None
                    ) -> EncodedVideo:
    """Encodes already decoded clip frames (T, 224, 224, 3) uint8 (one per clip, as training's
    frames directories hold them) with the frozen CLIP; `path` names the video."""
    n = frames.shape[0]
    if n > self.config.model.max_num_clips:
      raise InputError(self._too_long(path, n / self.fps, self.fps,
                                      self.config.model.max_num_clips))
    padded = np.zeros((-(-n // FRAME_CHUNK) * FRAME_CHUNK,) + frames.shape[1:], np.uint8)
    padded[:n] = frames
    chunks = [np.asarray(self._encode_frames(self.clip_params, jax.device_put(c, self.device)))
              for c in np.split(padded, len(padded) // FRAME_CHUNK)]
    features = np.concatenate(chunks)[:n]
    thumbs = np.ascontiguousarray(frames[:, ::THUMBNAIL_STRIDE, ::THUMBNAIL_STRIDE])
    return EncodedVideo(path, features, thumbs, n / self.fps if duration is None else duration,
                        self.fps)

  @staticmethod
  def _too_long(path: str, seconds: float, fps: float, limit: int) -> str:
    return (f'{path}: {seconds:.0f} s is {int(np.ceil(seconds * fps))} clips at {fps:g} fps, '
            f'more than the model handles (model.max_num_clips = {limit}, i.e. '
            f'{limit / fps:.0f} s); cut the video into parts')

  def _on_device(self, video: EncodedVideo) -> tuple[jax.Array, jax.Array]:
    """(1, T, K, P, Dv) features and (1, T) mask padded to a T bucket, on the device; the last
    video's are kept, so many `predict` calls on one video copy it once."""
    if self._cached is None or self._cached[0] is not video:
      t = pick_bucket(video.num_clips, self.t_buckets)   # encode_video checked the limit
      feats = np.zeros((1, t) + video.features.shape[1:], np.float32)
      feats[0, :video.num_clips] = video.features
      mask = np.arange(t)[None] < video.num_clips
      self._cached = (video, *jax.device_put((feats, mask), self.device))
    return self._cached[1], self._cached[2]

  def predict(self, query: str | Sequence[str], video: EncodedVideo | str | os.PathLike
              ) -> dict | list[dict]:
    """QVHighlights submission row(s) for `query` (a string -> a dict; a list -> a list).

    Rows hold qid (index in the list), query, vid, duration, pred_relevant_windows
    [[start_s, end_s, score], ...] by score (after NMS) and pred_saliency_scores (one per clip).
    """
    single = isinstance(query, str)
    queries = [query] if single else list(query)
    if not queries:
      raise InputError('no query given')
    for q in queries:
      check_query(q)
    if not isinstance(video, EncodedVideo):
      video = self.encode_video(video)
    from jaxvg.clip import tokenize
    tokens = tokenize(queries)
    feats, mask = self._on_device(video)
    # Each query sees its own copy of the video in the adapter: bound the batch for long videos.
    per_query = int(np.prod(feats.shape))
    step = max([b for b in QUERY_BUCKETS if b * per_query <= CALL_BUDGET], default=1)
    rows = []
    for lo in range(0, len(queries), step):
      chunk = tokens[lo:lo + step]
      size = pick_bucket(len(chunk), [b for b in QUERY_BUCKETS if b <= step])
      padded = np.zeros((size, tokens.shape[1]), np.int32)
      padded[:len(chunk)] = chunk
      padded[len(chunk):, 0] = tokens[0, 0]   # a start token keeps padded rows finite
      outputs = jax.device_get(self._ground(self.params, self.clip_params, feats, mask,
                                            jax.device_put(padded, self.device)))
      metadata = {'qid': list(range(lo, lo + size)), 'vid': [video.vid] * size,
                  'duration': np.full(size, video.duration), 'fps': np.full(size, video.fps),
                  'sample_mask': np.arange(size) < len(chunk)}
      rows.extend(self.task.postprocess(outputs, metadata, self.config))
    for row in rows:
      row.update(query=queries[row['qid']], duration=video.duration)
    return rows[0] if single else rows


def format_rows(rows: list[dict], top: int = 5) -> str:
  """The top windows of each query as text."""
  lines = []
  for row in rows:
    lines.append(f'query {row["qid"]}: {row["query"]!r}')
    for rank, (start, end, score) in enumerate(row.get('pred_relevant_windows', [])[:top], 1):
      lines.append(f'  {rank}. {start:7.1f} s - {end:7.1f} s   score {score:.3f}')
  return '\n'.join(lines)


class Predictor:
  """A trained model of any task with a video predictor, on one device.

  Args:
    config: the experiment config the checkpoint was trained with.
    workdir: run directory holding `checkpoints/{latest,best}` (not needed for a released file).
    checkpoint: 'latest', 'best', or the path of a released (official) checkpoint.
    **options: the task's video-predictor options (`ClipVideoPredictor`: `clip_path`, `fps`).
  Attribute access falls through to the task's video predictor (`encode_video`, `predict`, …).
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: str | None = None,
               checkpoint: str = 'latest', **options: Any):
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
    """The run in `workdir`, with the config the trainer wrote to `<workdir>/config.json`
    (fields added since it was written take the task's `base_config` defaults)."""
    path = epath.Path(workdir) / 'config.json'
    if not path.exists():
      raise InputError(f'{path} not found: is {workdir!r} a jaxvg run directory?')
    from jaxvg import configs, registry
    saved = json.loads(path.read_text())
    base_config = registry.get_task(saved.get('task', '')).base_config
    config = configs.from_saved(saved, base_config() if base_config else None)
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
