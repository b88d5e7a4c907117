"""Ground queries in a user's video: `--mode predict --video x.mp4 --query "…" --proposals t.json`.

The candidate tubes come from the user's tracks file (`proposals.read_candidates`); each query
is grounded like a benchmark record (`runner.ground_tubes`). Writes
`<workdir or .>/predictions/<video stem>.json`, one row per query (the submission row in raw
frames, inclusive span, plus the chosen track, every track's score and the sampled frames'
scores), and `<video stem>.png` (`plotting.plot_grounding`). Every input is checked before the
model is loaded, and nothing is written when one is bad.
"""
from __future__ import annotations

import json
import os
from typing import Any

import ml_collections
import numpy as np
from etils import epath

from jaxvg.data.records import AnnotationError
from jaxvg.errors import UserError
from jaxvg.predictor import InputError, probe_video
from jaxvg.projects.zeroshot import pipeline, plotting, prompts, proposals, runner
from jaxvg.registry import UserVideo


def video_shape(path: str) -> tuple[int, int, int]:
  """(height, width) of a video's frames as decoded, and its frame count (0 when the container
  does not say)."""
  import av
  with av.open(path) as container:
    stream = container.streams.video[0]
    return stream.codec_context.height, stream.codec_context.width, stream.frames


def _row(grounded: runner.GroundedTube, index: int, query: str) -> dict[str, Any]:
  tubes, out = grounded.tubes, grounded.out
  track_id = tubes.track_ids[grounded.track]
  return {**grounded.row(index, 'hcstvg'), 'query': query, 'track': grounded.track,
          'track_id': track_id.item() if isinstance(track_id, np.generic) else track_id,
          'track_scores': np.round(out['track_scores'], 6).tolist(),
          'sampled_frames': tubes.frame_ids[grounded.samples].tolist(),
          'frame_scores': np.round(out['frame_scores'], 6).tolist()}


def describe(row: dict[str, Any]) -> str:
  first, last = row['span']
  return (f"query {row['qid']}: {row['query']!r} -> track {row['track_id']!r} (of "
          f"{len(row['track_scores'])}), frames {first}-{last}")


def ground_video(config: ml_collections.ConfigDict, workdir: str | None, video: UserVideo,
                 grounder: pipeline.Grounder | None = None
                 ) -> tuple[list[dict[str, Any]], list[runner.GroundedTube]]:
  """Grounds every query of `video`; writes the JSON and the PNG; returns (rows, groundings)."""
  if not video.queries:
    raise InputError('no --query given')
  if not video.proposals:
    raise UserError('--proposals is required: the zero-shot system chooses among candidate '
                    'tubes (tracks file format in docs/zeroshot.md)')
  probe_video(video.path)
  height, width, num_frames = video_shape(video.path)
  d = config.data
  tubes = proposals.read_candidates(video.proposals, width, height, d.proposal_frame_unit)
  if num_frames and tubes.frame_ids[-1] >= num_frames:
    raise AnnotationError(f"{video.proposals}: field 'frames': frame {tubes.frame_ids[-1]} is "
                          f'past the last frame of {video.path} ({num_frames - 1})')
  name = os.path.basename(video.path)
  decomposition = (prompts.load_decompositions(d.decompositions).get(name)
                   if d.decompositions else None)
  grounder = grounder or runner.build_grounder(config)
  grounded = [runner.ground_tubes(grounder, video.path, tubes, query, decomposition, d.num_frames)
              for query in video.queries]
  rows = [_row(g, k, q) for k, (g, q) in enumerate(zip(grounded, video.queries))]
  out_dir = epath.Path(workdir or '.') / 'predictions'
  out_dir.mkdir(parents=True, exist_ok=True)
  stem = os.path.splitext(name)[0]
  json_path = out_dir / f'{stem}.json'
  json_path.write_text(json.dumps(rows, indent=1))
  png_path = plotting.plot_grounding(grounded, list(video.queries), out_dir / f'{stem}.png')
  for row in rows:
    print(describe(row))
  print(f'wrote {json_path} and {png_path}')
  return rows, grounded
