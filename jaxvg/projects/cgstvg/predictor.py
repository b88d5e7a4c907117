"""CG-STVG's video predictor behind `jaxvg.Predictor`: find the tube of a query in your video.

    predictor = jaxvg.Predictor.from_workdir('runs/cgstvg_synthetic')
    video = predictor.encode_video('clip.mp4')            # decoded and resized once
    rows = predictor.predict(['the red square that moves left'], video)
    predictor.plot(rows, video, 'tube.png')

The video is sampled as the config's evaluation samples it (HC-STVG rule at `data.sample_fps`, or
the VidSTG rule's `data.test_frames`), at most `data.max_frames` frames by int(linspace), resized
to short side `data.resolution`; with `data.test_halves` (the official test) at twice the
HC-STVG rate and up to twice `data.max_frames`, run as its even and odd frames and merged. The
queries of one call are tokenised and grounded in one jitted call per static query bucket, the
frames padded to a frame bucket (the model is padding invariant). Rows are STVG submission rows
(`jaxvg.projects.cgstvg.postprocess`): the span in raw frames and a box on every raw frame of the
sampled range, plus `query` and `span_seconds`.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np

from jaxvg.data import stvg_frames
from jaxvg.data.stvg_readers import STVG_PROTOCOLS
from jaxvg.data.temporal import pick_bucket
from jaxvg.data.tube_examples import collate_tubes, halves_rows, tokenizer_folder
from jaxvg.plotting_tubes import PRED_COLOUR, draw_box, plot_tube
from jaxvg.predictor import InputError, probe_video
from jaxvg.text.roberta_tokenizer import RobertaTokenizer
from jaxvg.train import mesh as mesh_lib

QUERY_BUCKETS = (1, 4, 16)   # queries per jitted call; more are grounded 16 at a time


@dataclasses.dataclass(frozen=True)
class EncodedVideo:
  """One video decoded once at the model's sampling; reusable by any number of `predict` calls.

  Attributes:
    path: the video file.
    frames: (T, h, w, 3) uint8 sampled frames, resized (short side `data.resolution`).
    frame_ids: (T,) their raw (decode-order) frame indices.
    fps: raw frames per second.
    num_frames: raw frames in the video.
    width, height: the original frame size (rows' boxes are in its pixels).
  """
  path: str
  frames: np.ndarray
  frame_ids: np.ndarray
  fps: float
  num_frames: int
  width: int
  height: int

  @property
  def vid(self) -> str:
    return pathlib.Path(self.path).stem

  @property
  def duration(self) -> float:
    return self.num_frames / self.fps


def _count_frames(path: str) -> tuple[int, float, int, int]:
  """(raw frames, fps, width, height) without decoding: packets of the video stream."""
  import av
  with av.open(path) as container:
    stream = container.streams.video[0]
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    width, height = stream.codec_context.width, stream.codec_context.height
    count = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
  if not fps:
    raise InputError(f'{path}: the video does not say its frame rate')
  return count, fps, width, height


def sampled_frame_ids(config: ml_collections.ConfigDict, num_frames: int, fps: float
                      ) -> np.ndarray:
  """Raw frames the model sees: the dataset's evaluation rule (with `data.test_halves` the
  HC-STVG rule at twice `data.sample_fps`, as the official test clip), then at most
  `data.max_frames` per model pass by int(linspace)."""
  d = config.data
  halves = bool(d.get('test_halves', False))
  if STVG_PROTOCOLS.get(d.dataset, 'hcstvg') == 'vidstg':
    ids = stvg_frames.sample_ids((0, num_frames), fps, num_samples=d.test_frames)
  else:
    ids = stvg_frames.sample_ids((0, num_frames), fps,
                                 sample_fps=d.sample_fps * (2 if halves else 1))
  most = d.max_frames * (2 if halves else 1)
  if len(ids) > most:
    ids = ids[np.linspace(0, len(ids) - 1, most).astype(np.int64)]
  return ids


def check_query(query: Any) -> str:
  if not isinstance(query, str) or not query.strip():
    raise InputError(f'empty query {query!r}: give a sentence describing the object and what '
                     'it does')
  return query


class VideoPredictor:
  """A trained CG-STVG on one device. Built by `jaxvg.Predictor`, which restores the parameters.

  `tokenizer`: a RoBERTa tokenizer folder, default `config.data.tokenizer`.
  """

  def __init__(self, run, params: Any, tokenizer: str | None = None):
    config = ml_collections.ConfigDict(run.config.to_dict())
    if tokenizer:
      config.data.tokenizer = str(tokenizer)
    if not config.data.get('tokenizer', ''):
      raise InputError('no tokenizer: set data.tokenizer (a RoBERTa folder) or pass tokenizer=')
    self.config = config
    self.run = run
    self.params = params
    self.tokenizer = RobertaTokenizer.from_folder(tokenizer_folder(config.data),
                                                  config.data.max_text_len)
    self.halves = bool(config.data.get('test_halves', False))

  @staticmethod
  def check_queries(queries: Sequence[str]) -> None:
    """Raises `InputError` for an empty query (longer ones are truncated as in training)."""
    for query in queries:
      check_query(query)

  def encode_video(self, path: str | os.PathLike) -> EncodedVideo:
    """Decodes the frames the model sees, resized as in training, once."""
    path = str(path)
    probe_video(path)
    num_frames, fps, width, height = _count_frames(path)
    ids = sampled_frame_ids(self.config, num_frames, fps)
    per_pass = -(-len(ids) // 2) if self.halves else len(ids)
    if per_pass > max(self.config.data.frame_buckets):
      raise InputError(f'{path}: {per_pass} frames exceed the largest frame bucket '
                       f'{max(self.config.data.frame_buckets)} (data.frame_buckets)')
    d = self.config.data
    try:
      frames = stvg_frames.decode_frames_at(path, ids, d.resolution, d.max_size / d.resolution)
    except Exception as e:  # PyAV raises many types for corrupt streams; report them as one.
      raise InputError(f'{path}: cannot decode the video ({type(e).__name__}: {e})') from None
    return EncodedVideo(path, frames, ids, fps, num_frames, width, height)

  def _examples(self, queries: Sequence[str], first_qid: int, video: EncodedVideo
                ) -> list[dict[str, Any]]:
    t = len(video.frame_ids)
    return [{'frames': video.frames, 'frame_ids': video.frame_ids,
             'boxes': np.zeros((t, 4), np.float32), 'box_mask': np.zeros(t, bool),
             'in_span': np.zeros(t, bool), 'span': np.zeros(2, np.int32),
             'qid': first_qid + k, 'vid': video.vid, 'query': query, 'width': video.width,
             'height': video.height, 'tokens': self.tokenizer.encode(query)}
            for k, query in enumerate(queries)]

  def predict(self, query: str | Sequence[str], video: EncodedVideo | str | os.PathLike
              ) -> dict | list[dict]:
    """Tube row(s) for `query` (a string -> a dict; a list -> a list): qid (index in the list),
    query, span (raw frames, the dataset's convention), span_seconds, frame_ids and boxes (xyxy
    pixels of the original frame, one per raw frame)."""
    single = isinstance(query, str)
    queries = [query] if single else list(query)
    if not queries:
      raise InputError('no query given')
    self.check_queries(queries)
    if not isinstance(video, EncodedVideo):
      video = self.encode_video(video)
    d, rows = self.config.data, []
    for lo in range(0, len(queries), max(QUERY_BUCKETS)):
      chunk = queries[lo:lo + max(QUERY_BUCKETS)]
      size = pick_bucket(len(chunk), QUERY_BUCKETS)
      examples = self._examples(chunk, lo, video) + [None] * (size - len(chunk))
      if self.halves:           # the official test: even and odd frames, merged by postprocess
        examples = halves_rows(examples)
      batch, meta = collate_tubes(examples, frame_buckets=d.frame_buckets, height=d.height,
                                  width=d.width, max_text_len=d.max_text_len,
                                  pad_token_id=self.tokenizer.pad_id)
      outputs = self.run.eval_step(self.params, mesh_lib.to_global(batch, self.run.mesh),
                                   self.run.frozen_params)
      rows.extend(self.run.task.postprocess(jax.device_get(outputs), meta, self.config))
    for row in rows:
      end = row['span'][1] + (STVG_PROTOCOLS.get(d.dataset, 'hcstvg') == 'hcstvg')
      row.update(query=queries[row['qid']], vid=video.vid,
                 span_seconds=[row['span'][0] / video.fps, end / video.fps])
    return rows[0] if single else rows

  def draw(self, row: dict, video: EncodedVideo) -> np.ndarray:
    """(T, h, w, 3) copies of the sampled frames with the predicted box drawn inside the span."""
    scale = np.array([video.frames.shape[2] / video.width,
                      video.frames.shape[1] / video.height] * 2)
    ids = list(row['frame_ids'])
    drawn = []
    for frame, frame_id in zip(video.frames, video.frame_ids):
      inside = row['span'][0] <= frame_id <= row['span'][1] and frame_id in ids
      drawn.append(draw_box(frame, np.asarray(row['boxes'][ids.index(frame_id)]) * scale,
                            PRED_COLOUR) if inside else frame)
    return np.stack(drawn)

  def plot(self, rows: dict | list[dict], video: EncodedVideo, path) -> str:
    """One PNG per row (`jaxvg.plotting_tubes.plot_tube`): `path` for the first, `<stem>-<qid>`
    beside it for the others; returns the paths, comma-separated."""
    rows = [rows] if isinstance(rows, dict) else rows
    path = pathlib.Path(path)
    written = []
    for k, row in enumerate(rows):
      out = path if k == 0 else path.with_name(f'{path.stem}-{row["qid"]}{path.suffix}')
      written.append(str(plot_tube(row, video.frames, video.frame_ids, width=video.width,
                                   height=video.height, num_frames=video.num_frames,
                                   fps=video.fps, path=out, query=row['query'])))
    return ', '.join(written)

  def describe(self, rows: dict | list[dict], video: EncodedVideo) -> str:
    rows = [rows] if isinstance(rows, dict) else rows
    lines = [f'{video.vid}: {video.duration:.1f} s, {video.num_frames} frames at '
             f'{video.fps:g} fps, {len(video.frame_ids)} sampled']
    for row in rows:
      start, end = row['span_seconds']
      ids = list(row['frame_ids'])
      middle = (row['span'][0] + row['span'][1]) // 2
      box = row['boxes'][ids.index(middle)] if middle in ids else None
      lines.append(f'query {row["qid"]}: {row["query"]!r}\n  {start:.1f} s - {end:.1f} s '
                   f'(frames {row["span"][0]}-{row["span"][1]})'
                   + (f', box at {middle}: {[round(v) for v in box]}' if box is not None
                      else ''))
    return '\n'.join(lines)
