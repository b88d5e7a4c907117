"""Input throughput at QVHighlights shapes: `python -m jaxvg.bench.data`.

Batches/s of the real pipeline (`jaxvg.data.make_loader`, in-process, no prefetch workers) from
cached features (batch 8, T 75 -> bucket 96, (4, 50, 768) fp16, 20 query tokens) and from
pre-decoded frames (JPEG and raw), against what one R²-Tuning training step consumes on this CPU
(~0.4 steps/s). Files are written to a temporary directory and read warm (page cache).
"""
from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np

from jaxvg.projects.r2tuning import config as r2_config
from jaxvg.data import frames as frames_lib
from jaxvg.data import pipeline

BATCH, CLIPS, TOKENS, NUM_VIDEOS = 8, 75, 20, 8
STEP_RATE = 0.27  # R²-Tuning train steps/s at batch 8 x 75 clips, measured by jaxvg.bench.r2tuning (docs/performance.md).


def _write_split(root: str) -> None:
  rng = np.random.default_rng(0)
  vdir, qdir = os.path.join(root, 'vid'), os.path.join(root, 'txt')
  os.makedirs(vdir)
  os.makedirs(qdir)
  rows = []
  for i in range(NUM_VIDEOS):
    np.save(os.path.join(vdir, f'v{i}.npy'),
            rng.standard_normal((CLIPS, 4, 50, 768), np.float32).astype(np.float16))
    np.save(os.path.join(qdir, f'{i}.npy'),
            rng.standard_normal((TOKENS, 4, 512), np.float32).astype(np.float16))
    rows.append({'qid': i, 'query': 'a query', 'duration': CLIPS * 2, 'vid': f'v{i}',
                 'relevant_windows': [[10, 30]], 'relevant_clip_ids': [5, 6],
                 'saliency_scores': [[4, 4, 4], [3, 3, 3]]})
    # Frames: smooth content so JPEG sizes are realistic rather than noise-sized.
    base = rng.integers(0, 256, (CLIPS, 7, 7, 3), np.uint8)
    video = np.repeat(np.repeat(base, 32, 1), 32, 2)
    video = (video.astype(np.int16) + rng.integers(-8, 8, video.shape)).clip(0, 255)
    for fmt in frames_lib.FORMATS:
      frames_lib.write_video(os.path.join(root, fmt), f'v{i}', video.astype(np.uint8), 0.5, fmt)
  for fmt in frames_lib.FORMATS:
    frames_lib.build_index(os.path.join(root, fmt))
  with open(os.path.join(root, 'highlight_train_release.jsonl'), 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)


def _rate(config, num_batches: int) -> float:
  loader = pipeline.make_loader(config, 'train', train=True, num_epochs=num_batches,
                                process_index=0, process_count=1)
  it = iter(loader)
  next(it)  # warm-up (file handles, thread start)
  start = time.perf_counter()
  for _ in range(num_batches - 1):
    next(it)
  return (num_batches - 1) / (time.perf_counter() - start)


def _dir_mb(path: str) -> float:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20


def run(num_batches: int = 6) -> dict:
  """Measures batches/s; returns a flat dict of numbers."""
  with tempfile.TemporaryDirectory() as root:
    _write_split(root)
    c = r2_config.base()
    c.data.anno_dir = root
    c.data.video_feature_dir = os.path.join(root, 'vid')
    c.data.query_feature_dir = os.path.join(root, 'txt')
    c.data.t_buckets = (96,)
    c.train.batch_size = BATCH
    out = {'features_batches_per_s': _rate(c, num_batches)}
    c.data.source = 'frames'
    for fmt in frames_lib.FORMATS:
      c.data.frames_dir = os.path.join(root, fmt)
      out[f'frames_{fmt}_batches_per_s'] = _rate(c, num_batches)
      out[f'frames_{fmt}_mb_per_video'] = _dir_mb(c.data.frames_dir) / NUM_VIDEOS
    out['features_mb_per_video'] = _dir_mb(os.path.join(root, 'vid')) / NUM_VIDEOS
    reader = frames_lib.FrameReader(os.path.join(root, 'jpeg'))
    start = time.perf_counter()
    reader.read('v0')
    out['jpeg_decode_ms_per_frame'] = 1000 * (time.perf_counter() - start) / CLIPS
  out['train_step_per_s'] = STEP_RATE
  return out


if __name__ == '__main__':
  for key, value in run().items():
    print(f'{key:32s} {value:10.3f}')
