"""`python -m jaxvg.prepare frames`: decode videos into a frames directory (see jaxvg.data.frames).

  frames --videos DIR --annotations FILE --fps F|auto --out DIR [--format jpeg|raw] [--workers N]
  frames synthetic --root DIR [--size default|tiny]

Parallel (one process per worker), resumable (videos already in <out>/videos are skipped), and a
video that fails to decode is reported in the summary (and <out>/failures.json) while the rest
completes. `--fps auto` (YouTube Highlights) takes one frame per annotated segment:
fps = len(match) / (frames / video fps) from the annotation file.
"""
from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import sys

import tqdm

from jaxvg.data import frames as frames_lib
from jaxvg.errors import UserError


def annotation_fps(path: str) -> dict[str, float | None]:
  """vid -> per-video fps ("auto", from match/frames/fps) or None, from a QVH-schema jsonl or an
  R²-Tuning {vid: entry} json file."""
  with open(path) as f:
    if path.endswith('.jsonl'):
      entries = [(row['vid'], row) for row in map(json.loads, filter(str.strip, f))]
    else:
      entries = list(json.load(f).items())
  out = {}
  for vid, row in entries:
    if 'match' in row and 'frames' in row and 'fps' in row:
      out[vid] = len(row['match']) / (float(row['frames']) / float(row['fps']))
    else:
      out.setdefault(vid, None)
  return out


def _process(job: tuple[str, str, float], out: str, fmt: str, sampling: str
             ) -> tuple[str, str | None]:
  path, vid, fps = job
  try:
    array = frames_lib.decode_video(path, fps, sampling=sampling)
    frames_lib.write_video(out, vid, array, fps, fmt)
  except Exception as e:  # pylint: disable=broad-except  (reported, the rest continues)
    return vid, f'{type(e).__name__}: {e}'
  return vid, None


def prepare_frames(videos: str, out: str, fps: str, *, annotations: str = '', fmt: str = 'jpeg',
                   workers: int = 1, sampling: str = 'ffmpeg', vid_suffix: str = '') -> dict:
  """Decodes every (annotated) video in `videos` into `out`; returns the summary dict."""
  if not os.path.isdir(videos):
    raise UserError(f'{videos}: no such directory of videos (--videos)')
  if annotations and not os.path.isfile(annotations):
    raise UserError(f'{annotations}: no such annotation file (--annotations)')
  if fps != 'auto':
    try:
      if float(fps) <= 0:
        raise ValueError
    except ValueError:
      raise UserError(f"--fps must be a positive number or 'auto', got {fps!r}") from None
  wanted = annotation_fps(annotations) if annotations else None
  if fps == 'auto' and wanted is None:
    raise UserError('--fps auto needs --annotations with match/frames/fps fields')
  done = frames_lib.done_videos(out)
  jobs, skipped = [], 0
  for path in frames_lib.iter_video_files(videos):
    vid = os.path.splitext(os.path.basename(path))[0]
    key = vid[:-len(vid_suffix)] if vid_suffix and vid.endswith(vid_suffix) else vid
    if wanted is not None and key not in wanted:
      continue
    if vid in done:
      skipped += 1
      continue
    if fps == 'auto':
      if wanted[key] is None:
        raise UserError(f'{annotations}: no match/frames/fps for {key!r} (needed by --fps auto)')
      video_fps = wanted[key]
    else:
      video_fps = float(fps)
    jobs.append((path, vid, video_fps))
  os.makedirs(out, exist_ok=True)
  work = functools.partial(_process, out=out, fmt=fmt, sampling=sampling)
  failures = {}
  bar = tqdm.tqdm(total=len(jobs), desc='frames', unit='video')
  if workers > 1 and len(jobs) > 1:
    with multiprocessing.get_context('spawn').Pool(workers) as pool:
      results = pool.imap_unordered(work, jobs)
      for vid, error in results:
        if error:
          failures[vid] = error
        bar.update()
  else:
    for job in jobs:
      vid, error = work(job)
      if error:
        failures[vid] = error
      bar.update()
  bar.close()
  index = frames_lib.build_index(out)
  with open(os.path.join(out, 'failures.json'), 'w') as f:
    json.dump(failures, f, indent=1)
  return {'written': len(jobs) - len(failures), 'skipped_done': skipped,
          'failed': failures, 'total_in_index': len(index)}


def main(argv: list[str]) -> int:
  """CLI entry; returns 0 when every video was decoded, 1 if some failed."""
  if argv and argv[0] == 'synthetic':
    from jaxvg.data import synthetic
    parser = argparse.ArgumentParser(prog='jaxvg.prepare frames synthetic')
    parser.add_argument('--root', default=synthetic.default_root())
    parser.add_argument('--size', default='default', choices=sorted(synthetic.SIZES))
    args = parser.parse_args(argv[1:])
    print(synthetic.ensure_synthetic(args.root, args.size))
    return 0
  parser = argparse.ArgumentParser(prog='jaxvg.prepare frames', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--videos', required=True, help='directory of video files')
  parser.add_argument('--annotations', default='', help='only videos named in this file')
  parser.add_argument('--fps', required=True, help="clips per second, or 'auto' (YouTube)")
  parser.add_argument('--out', required=True, help='frames directory to write')
  parser.add_argument('--format', default='jpeg', choices=frames_lib.FORMATS)
  parser.add_argument('--workers', type=int, default=max(1, os.cpu_count() or 1))
  parser.add_argument('--sampling', default='ffmpeg', choices=frames_lib.SAMPLINGS)
  parser.add_argument('--vid-suffix', default='', help="file-name suffix not in the annotation "
                      "vids (TACoS: '-cam-002')")
  args = parser.parse_args(argv)
  summary = prepare_frames(args.videos, args.out, args.fps, annotations=args.annotations,
                           fmt=args.format, workers=args.workers, sampling=args.sampling,
                           vid_suffix=args.vid_suffix)
  return report(summary, 'frames')


def report(summary: dict, what: str) -> int:
  """Prints a preparation summary (corrupt videos are listed, not fatal); 1 if any failed."""
  print(f"{what}: {summary['written']} written, {summary['skipped_done']} already done, "
        f"{len(summary['failed'])} failed, {summary['total_in_index']} in the index")
  for vid, error in sorted(summary['failed'].items()):
    print(f'  FAILED {vid}: {error}')
  return 1 if summary['failed'] else 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
