"""R²-Tuning's video predictor behind `jaxvg.Predictor`: a video decoded and CLIP-encoded once,
any number of queries grounded in one jitted call.

The video is decoded as for training (PyAV, one frame per clip at the dataset fps, short side to
224, centre crop) and run through the frozen CLIP once: (T, K, P, Dv), the last K layers. The
queries of one call are tokenized, padded to a static query bucket and grounded in ONE jitted call
(text tower + adapter), the video padded to a static T bucket (the model is padding-invariant).
Rows are QVHighlights submission dicts, so they go straight into `jaxvg.evaluation.evaluate`.
Inference runs on one device: a single video is small, and splitting a handful of queries over a
mesh would only add padding.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvg.data.temporal import pick_bucket
from jaxvg.predictor import InputError, probe_video

QUERY_BUCKETS = (1, 4, 16)   # queries per jitted call; more are grounded 16 at a time
CALL_BUDGET = 2 ** 28        # video feature elements per call (queries x T x K x P x Dv): 1 GiB
FRAME_CHUNK = 16             # frames per jitted CLIP call when encoding a video
THUMBNAIL_STRIDE = 2         # thumbnails kept for the plot: 224 / 2 = 112 pixels


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


class VideoPredictor:
  """A trained R²-Tuning (or a converted official checkpoint) plus its frozen CLIP, on one device.

  Built by `jaxvg.Predictor`, which restores the parameters. `clip_path`: CLIP weight file
  (OpenAI .pt or HF safetensors), default `config.clip.path`; when both are empty the config's
  random-init CLIP (as the synthetic benchmark trains with). `fps`: clips per second, default
  the dataset's (`jaxvg.data.readers` spec).
  """

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
    return plotting.plot_predictions(rows, video, path)

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
    keep = ('cls_logits', 'reg', 'point_mask', 'saliency', 'video_mask')

    def ground(params, clip_params, video, video_mask, tokens):
      """video (1, T, K, P, Dv), video_mask (1, T), tokens (Q, 77) -> outputs with batch Q."""
      q = tokens.shape[0]
      query = encode_text_layers(clip_model, clip_params, tokens, num_layers)
      batch = {'video': jnp.broadcast_to(video, (q,) + video.shape[1:]),
               'video_mask': jnp.broadcast_to(video_mask, (q,) + video_mask.shape[1:]),
               'query': query.astype(feature_dtype).astype(jnp.float32),
               'query_mask': tokens != 0}
      outputs = apply_model(model, params, batch, train=False, dtype=dtype)
      return {k: v for k, v in outputs.items() if k in keep}
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


# ----------------------------------------------------------------------------------- CLI


def format_rows(rows: list[dict], top: int = 5) -> str:
  """The top windows of each query as text."""
  lines = []
  for row in rows:
    lines.append(f'query {row["qid"]}: {row["query"]!r}')
    for rank, (start, end, score) in enumerate(row.get('pred_relevant_windows', [])[:top], 1):
      lines.append(f'  {rank}. {start:7.1f} s - {end:7.1f} s   score {score:.3f}')
  return '\n'.join(lines)
