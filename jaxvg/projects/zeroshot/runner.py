"""The zero-shot system's own loop (`--mode predict`): no training, one grounding per query.

For each (video, query) record of the split: read the video's candidate tubes
(`dino_sam2_proposals/<stem>.json`), sample `num_frames` proposal frames uniformly (the official
`np.linspace(0, n - 1, 20)`), decode those frames and the tubes' masks on them, ground the query
(jaxvg.projects.zeroshot.pipeline.Grounder), and write the chosen tube's boxes over its proposal
frames with the span between the first and last selected frames. Rows go to
`<workdir>/predictions.jsonl`, the official metrics to `<workdir>/metrics.json`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvg.data.stvg_frames import decode_frames_at
from jaxvg.data.stvg_readers import (STVG_PROTOCOLS, CandidateTubes, proposals_path,
                                     read_proposals, read_stvg_split)
from jaxvg.errors import UserError
from jaxvg.modules.vit import preprocess_frames
from jaxvg.postprocess.tubes import tube_row
from jaxvg.projects.zeroshot import config as zs_config
from jaxvg.projects.zeroshot import convert, pipeline, prompts
from jaxvg.projects.zeroshot.proposals import box_mask
from jaxvg.registry import UserVideo


def _rle_counts(counts: str | list[int]) -> list[int]:
  """COCO RLE counts: a list, or pycocotools' compressed string (6-bit chunks, delta-coded)."""
  if not isinstance(counts, str):
    return [int(c) for c in counts]
  out, p = [], 0
  while p < len(counts):
    value, shift, more = 0, 0, True
    while more:
      chunk = ord(counts[p]) - 48
      value |= (chunk & 0x1f) << shift
      more = bool(chunk & 0x20)
      p, shift = p + 1, shift + 5
      if not more and chunk & 0x10:
        value |= -1 << shift
    if len(out) > 2:
      value += out[-2]
    out.append(value)
  return out


def rle_decode(rle: dict) -> np.ndarray:
  """A COCO RLE {'size': [H, W], 'counts': ...} -> (H, W) bool mask (column-major runs, zeros
  first)."""
  height, width = rle['size']
  runs = _rle_counts(rle['counts'])
  values = np.arange(len(runs)) % 2 == 1
  flat = np.repeat(values, runs)
  if flat.size != height * width:
    raise ValueError(f'RLE covers {flat.size} pixels, size says {height}x{width}')
  return flat.reshape(width, height).T


def sample_indices(num_proposal_frames: int, num_frames: int) -> np.ndarray:
  return np.linspace(0, num_proposal_frames - 1, num_frames).astype(np.int64)


def tube_masks(tubes: CandidateTubes, samples: np.ndarray) -> np.ndarray:
  """(P, F, H, W) float32 masks of every track on the sampled proposal frames: its RLEs, or its
  boxes' rectangles where a track has no RLE (a user's tracks file, `proposals.read_tracks`)."""
  def mask(p: int, s: int) -> np.ndarray:
    rle = tubes.rles[p][s]
    return rle_decode(rle) if rle is not None else box_mask(tubes.boxes[p, s], tubes.height,
                                                            tubes.width)
  return np.stack([np.stack([mask(p, s) for s in samples]) for p in range(len(tubes.rles))]
                  ).astype(np.float32)


def build_grounder(config: ml_collections.ConfigDict) -> pipeline.Grounder:
  """The backend named by `config.model` and the method of `config.grounding`."""
  m = config.model
  if not m.folder:
    raise UserError('config.model.folder must name a Hugging Face LLaVA folder (config.json, '
                    'safetensors, tokenizer.json)')
  overrides = {k: v for k, v in m.overrides.items() if v is not None}
  llava_config, params = convert.load_weights(m.folder, jnp.dtype(m.dtype), **overrides)
  grounding = zs_config.grounding_config(config)
  backend = pipeline.Backend.create(llava_config, params, prompts.load_tokenizer(m.folder),
                                    grounding, config.data.num_frames, remat=m.remat,
                                    dtype=jnp.dtype(m.dtype))
  return pipeline.Grounder(backend, grounding)


@dataclasses.dataclass(frozen=True)
class GroundedTube:
  """One query grounded among a video's candidate tubes.

  Attributes:
    tubes: the candidates (frame_ids in the file's units).
    samples: (F,) indices into `tubes.frame_ids` of the frames the MLLM read.
    frames: (F, h, w, 3) uint8 those frames as decoded (short side = the tower's input size).
    out: `Grounder.ground`'s output (track, span over the F samples, scores, maps).
  """
  tubes: CandidateTubes
  samples: np.ndarray
  frames: np.ndarray
  out: dict[str, Any]

  @property
  def track(self) -> int:
    return self.out['track']

  @property
  def span(self) -> tuple[int, int]:
    """First and last frame of the span, in the file's frame units."""
    first, last = self.out['span']
    return int(self.tubes.frame_ids[self.samples[first]]), int(
        self.tubes.frame_ids[self.samples[last]])

  def row(self, qid: Any, convention: str) -> dict[str, Any]:
    """The submission row: the chosen track's boxes on its frames (on every frame if it has no
    box anywhere), the span between the first and last selected frames."""
    boxes = self.tubes.boxes[self.track]
    shown = np.flatnonzero(np.any(boxes > 0, axis=-1))
    shown = shown if len(shown) else np.arange(len(self.tubes.frame_ids))
    return tube_row(qid, self.span, self.tubes.frame_ids[shown], boxes[shown], convention)


def ground_tubes(grounder: pipeline.Grounder, video_path: str, tubes: CandidateTubes, query: str,
                 decomposition: dict | None, num_frames: int, frame_unit: int = 1
                 ) -> GroundedTube:
  """Samples `num_frames` of the candidates' frames uniformly (the official
  `np.linspace(0, n - 1, num_frames)`, repeats when n < num_frames), decodes them (raw frame =
  file frame × `frame_unit`) and grounds `query` among the tubes."""
  vision = grounder.llava_config.vision
  samples = sample_indices(len(tubes.frame_ids), num_frames)
  unique, inverse = np.unique(tubes.frame_ids[samples] * frame_unit, return_inverse=True)
  try:
    frames = decode_frames_at(video_path, unique, vision.image_size, max_ratio=100.0)[inverse]
  except ValueError as e:   # the candidates name frames past the video's end
    raise UserError(str(e)) from None
  pixels = preprocess_frames(jnp.asarray(frames), vision)
  out = grounder.ground(pixels, query, tube_masks(tubes, samples), decomposition)
  return GroundedTube(tubes, samples, frames, out)


def predict(config: ml_collections.ConfigDict, grounder: pipeline.Grounder | None = None
            ) -> tuple[list[dict], list[dict]]:
  """(submission rows, ground-truth rows) of the configured split."""
  d = config.data
  anno_dir, data_dir, videos_dir = d.anno_dir, d.data_dir, d.videos_dir
  if d.dataset == 'synthetic_tubes':
    from jaxvg.data import synthetic_tubes
    paths = synthetic_tubes.ensure_synthetic_tubes(d.synthetic_root, d.synthetic_size)
    anno_dir = data_dir = paths.root
    videos_dir = paths.videos_dir
  records = read_stvg_split(d.dataset, anno_dir, d.split).records
  if d.max_records:
    records = records[:d.max_records]
  decompositions = prompts.load_decompositions(d.decompositions) if d.decompositions else {}
  grounder = grounder or build_grounder(config)
  rows = []
  for record in records:
    tubes = read_proposals(proposals_path(data_dir, record.vid))
    if not len(tubes.track_ids):
      raise UserError(f'{record.vid}: no candidate tubes in its proposal file')
    grounded = ground_tubes(grounder, os.path.join(videos_dir, record.vid), tubes, record.query,
                            decompositions.get(record.vid), d.num_frames, d.proposal_frame_unit)
    rows.append(grounded.row(record.qid, record.convention))
  return rows, [r.to_json() for r in records]


def run(config: ml_collections.ConfigDict, workdir: str | None, mode: str,
        video: UserVideo | None = None) -> dict | None:
  """The engine's entry for this task: only `predict`, of the split (grounding, then the official
  metrics) or of a user's video (`video.ground_video`)."""
  if mode == 'info':
    print(f'zero-shot STVG with {config.model.folder or "<no model folder>"}: nothing to train')
    return None
  if mode != 'predict':
    raise UserError(f'the zero-shot system has no {mode!r} mode (no training); use --mode predict')
  if video is not None:
    from jaxvg.projects.zeroshot.video import ground_video
    ground_video(config, workdir, video)
    return None
  if not workdir:
    raise UserError('--workdir is required for --mode predict')
  rows, gt_rows = predict(config)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'predictions.jsonl'), 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)
  from jaxvg.evaluation import evaluate
  metrics = evaluate(STVG_PROTOCOLS[config.data.dataset], rows, gt_rows)
  with open(os.path.join(workdir, 'metrics.json'), 'w') as f:
    json.dump(metrics['brief'], f, indent=1)
  if jax.process_index() == 0:
    print(json.dumps(metrics['brief']))
  return metrics
