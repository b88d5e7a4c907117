"""`python -m jaxvg.prepare stvg_frames`: STVG videos into a frames directory that keeps the raw
index of every stored frame (see jaxvg.data.stvg_frames).

  stvg_frames --videos DIR --annotations FILE --dataset hcstvg|vidstg (--sample-fps F |
              --num-frames N) --out DIR [--short-side 420] [--max-ratio 1.4] [--format jpeg|raw]
  stvg_frames synthetic [--root DIR] [--size default|tiny] [--sample-fps 3.2] [--short-side 120]

HC-STVG videos are the files named by the annotation keys; VidSTG videos are found by video id
anywhere under --videos (VidOR's <folder>/<vid>.mp4). Frames are sampled inside each record's
segment (VidSTG `used_segment`, else the whole video), one file per video (the first record's
segment when several queries share a video). Resumable; failures go to <out>/failures.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import tqdm

from jaxvg.data import frames as frames_lib
from jaxvg.data import stvg_frames
from jaxvg.data import stvg_readers
from jaxvg.data.tubes import TubeRecord
from jaxvg.prepare import frames as frames_prep


def _video_paths(videos: str) -> dict[str, str]:
  """file name and file stem -> path, for every video file under `videos`."""
  out = {}
  for root, _, files in os.walk(videos):
    for name in files:
      path = os.path.join(root, name)
      out[name] = path
      out.setdefault(os.path.splitext(name)[0], path)
  return out


def prepare_stvg_frames(videos: str, records: list[TubeRecord], out: str, *,
                        sample_fps: float | None = None, num_samples: int | None = None,
                        short_side: int = 420, max_ratio: float = 1.4, fmt: str = 'jpeg',
                        interpolation: str = 'BILINEAR') -> dict:
  """Decodes the sampled frames of every record's video into `out`; returns the summary."""
  paths = _video_paths(videos)
  done = frames_lib.done_videos(out)
  failures, written = {}, 0
  by_video = {}
  for record in records:
    by_video.setdefault(record.video_key, record)
  todo = [r for key, r in sorted(by_video.items()) if key not in done]
  for record in tqdm.tqdm(todo, desc='stvg frames', unit='video'):
    try:
      path = paths.get(record.vid) or paths.get(record.video_key)
      if path is None:
        raise FileNotFoundError(f'no video file for {record.vid!r} under {videos}')
      ids = stvg_frames.sample_ids(record.segment, record.fps, sample_fps=sample_fps,
                                   num_samples=num_samples)
      frames = stvg_frames.decode_frames_at(path, ids, short_side, max_ratio, interpolation)
      frames_lib.write_video(out, record.video_key, frames, sample_fps or 0.0, fmt, frame_ids=ids)
      written += 1
    except Exception as e:  # pylint: disable=broad-except  (reported, the rest continues)
      failures[record.video_key] = f'{type(e).__name__}: {e}'
  os.makedirs(out, exist_ok=True)
  index = frames_lib.build_index(out)
  with open(os.path.join(out, 'failures.json'), 'w') as f:
    json.dump(failures, f, indent=1)
  return {'written': written, 'skipped_done': len(by_video) - len(todo), 'failed': failures,
          'total_in_index': len(index)}


def ensure_synthetic_tube_frames(root: str = '', size: str = 'default', *,
                                 sample_fps: float = 3.2, short_side: int = 120,
                                 max_ratio: float = 1.4) -> str:
  """The synthetic tube benchmark (generated if missing) and its frames, train and val videos in
  `<benchmark>/frames-fps<sample_fps>-s<short_side>` (prepared if missing); returns that path."""
  from jaxvg.data import synthetic_tubes
  paths = synthetic_tubes.ensure_synthetic_tubes(root, size)
  out = os.path.join(paths.root, f'frames-fps{sample_fps:g}-s{short_side}')
  if not os.path.exists(os.path.join(out, frames_lib.INDEX_FILE)):
    records = [r for f in (paths.train_file, paths.val_file)
               for r in stvg_readers.read_hcstvg(f).records]
    summary = prepare_stvg_frames(paths.videos_dir, records, out, sample_fps=sample_fps,
                                  short_side=short_side, max_ratio=max_ratio)
    if summary['failed']:
      raise RuntimeError(f'synthetic tube frames failed: {summary["failed"]}')
  return out


def main(argv: list[str]) -> int:
  if argv and argv[0] == 'synthetic':
    from jaxvg.data import synthetic_tubes
    parser = argparse.ArgumentParser(prog='jaxvg.prepare stvg_frames synthetic')
    parser.add_argument('--root', default=synthetic_tubes.default_root())
    parser.add_argument('--size', default='default', choices=sorted(synthetic_tubes.SIZES))
    parser.add_argument('--sample-fps', type=float, default=3.2)
    parser.add_argument('--short-side', type=int, default=120)
    args = parser.parse_args(argv[1:])
    print(ensure_synthetic_tube_frames(args.root, args.size, sample_fps=args.sample_fps,
                                       short_side=args.short_side))
    return 0
  parser = argparse.ArgumentParser(prog='jaxvg.prepare stvg_frames', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--videos', required=True)
  parser.add_argument('--annotations', required=True)
  parser.add_argument('--dataset', required=True, choices=('hcstvg', 'vidstg'))
  rule = parser.add_mutually_exclusive_group(required=True)
  rule.add_argument('--sample-fps', type=float, help='HC-STVG rule (3.2 train, 6.4 test)')
  rule.add_argument('--num-frames', type=int, help='VidSTG rule: N frames per segment')
  parser.add_argument('--out', required=True)
  parser.add_argument('--short-side', type=int, default=420)
  parser.add_argument('--max-ratio', type=float, default=1.4)
  parser.add_argument('--format', default='jpeg', choices=frames_lib.FORMATS)
  parser.add_argument('--interpolation', default='BILINEAR', choices=stvg_frames.INTERPOLATIONS)
  args = parser.parse_args(argv)
  reader = stvg_readers.read_hcstvg if args.dataset == 'hcstvg' else stvg_readers.read_vidstg
  records = reader(args.annotations, skip_bad=True).records
  summary = prepare_stvg_frames(args.videos, records, args.out, sample_fps=args.sample_fps,
                                num_samples=args.num_frames, short_side=args.short_side,
                                max_ratio=args.max_ratio, fmt=args.format,
                                interpolation=args.interpolation)
  return frames_prep.report(summary, 'stvg frames')


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
