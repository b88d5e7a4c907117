"""`python -m jaxvg.prepare degrade`: H.264 re-encoding of videos (the compression degradation
that needs a codec, so it runs before training, not on device).

  degrade --videos DIR --out DIR --crf N                       every video at CRF N
  degrade --videos DIR --out DIR --seed S [--probability P] [--kinds K ...] [--severities S ...]
                                                               the videos the mixing protocol
                                                               assigns 'h264', at its CRF

The second form uses `jaxvg.data.degradations.draw`, a function of (seed, video id), so training
and evaluation later find exactly these videos degraded. Output: <out>/<vid>.mp4 (libx264,
yuv420p, the source's frame rate) and <out>/degraded.json ({vid: crf}); videos already written
are skipped. The video id is the file name without its extension.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from fractions import Fraction

import av
import numpy as np

from jaxvg.data import degradations
from jaxvg.data import frames as frames_lib
from jaxvg.errors import UserError


def reencode_h264(source: str, target: str, crf: int, preset: str = 'medium') -> int:
  """Re-encodes `source` with libx264 at `crf` (0…51, higher is worse) into `target`, keeping
  every frame and the frame rate; returns the number of frames written. Odd sizes are cropped
  by one pixel (yuv420p needs even sizes)."""
  if not 0 <= crf <= 51:
    raise ValueError(f'CRF must lie in 0…51, got {crf}')
  tmp = target + '.tmp.mp4'
  count = 0
  with av.open(source) as src, av.open(tmp, 'w') as dst:
    in_stream = src.streams.video[0]
    rate = in_stream.average_rate or in_stream.guessed_rate or Fraction(25)
    out_stream = dst.add_stream('libx264', rate=rate)
    out_stream.width = in_stream.codec_context.width // 2 * 2
    out_stream.height = in_stream.codec_context.height // 2 * 2
    out_stream.pix_fmt = 'yuv420p'
    out_stream.options = {'crf': str(crf), 'preset': preset}
    for frame in src.decode(in_stream):
      image = frame.to_ndarray(format='rgb24')[:out_stream.height, :out_stream.width]
      for packet in out_stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image),
                                                                 format='rgb24')):
        dst.mux(packet)
      count += 1
    for packet in out_stream.encode():
      dst.mux(packet)
  os.replace(tmp, target)
  return count


def degrade(videos: str, out: str, *, crf: int | None = None, seed: int | None = None,
            protocol: degradations.MixingProtocol | None = None) -> dict[str, int]:
  """Re-encodes the videos of directory `videos` into `out`: all at `crf`, or those that
  `protocol` assigns 'h264' under `seed`, at their severity's CRF. Returns {vid: crf}."""
  if (crf is None) == (seed is None):
    raise ValueError('give exactly one of crf (every video) and seed (the mixing protocol)')
  protocol = protocol or degradations.MixingProtocol()
  os.makedirs(out, exist_ok=True)
  written = {}
  for path in frames_lib.iter_video_files(videos):
    vid = os.path.splitext(os.path.basename(path))[0]
    video_crf = crf if crf is not None else degradations.draw(protocol, seed, vid).crf
    if video_crf is None:
      continue
    target = os.path.join(out, vid + '.mp4')
    if not os.path.exists(target):
      reencode_h264(path, target, video_crf)
    written[vid] = video_crf
  with open(os.path.join(out, 'degraded.json'), 'w') as f:
    json.dump(written, f, indent=1, sort_keys=True)
  return written


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(prog='jaxvg.prepare degrade', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--videos', required=True, help='directory of source videos')
  parser.add_argument('--out', required=True, help='directory of re-encoded videos')
  parser.add_argument('--crf', type=int, help='re-encode every video at this CRF')
  parser.add_argument('--seed', type=int, help='re-encode what the mixing protocol assigns')
  defaults = degradations.MixingProtocol()
  parser.add_argument('--probability', type=float, default=defaults.probability)
  parser.add_argument('--kinds', nargs='+', default=list(defaults.kinds))
  parser.add_argument('--severities', nargs='+', type=int, default=list(defaults.severities))
  args = parser.parse_args(argv)
  try:
    protocol = degradations.MixingProtocol(args.probability, tuple(args.kinds),
                                           tuple(args.severities))
    written = degrade(args.videos, args.out, crf=args.crf, seed=args.seed, protocol=protocol)
  except (ValueError, OSError, av.error.FFmpegError) as e:
    raise UserError(str(e)) from e
  print(f'degrade: {len(written)} videos re-encoded with H.264 into {args.out}')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
