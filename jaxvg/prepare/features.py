"""`python -m jaxvg.prepare features`: frozen CLIP features into the R²-Tuning cache layout.

  python -m jaxvg.prepare features --clip ViT-B-32.pt --frames FRAMES_DIR --out DATA_DIR \\
      [--annotations qvhighlights_train.jsonl ...] [--layers 4] [--format npy|array_record]

writes DATA_DIR/clip_b32_vid_k4/<vid>.npy (T, K, P, Dv) and, for each annotation query,
DATA_DIR/clip_b32_txt_k4/<qid>.npy (L, K, Dq), float16. Existing outputs are skipped.
`--clip random --arch tiny` runs with random weights (smoke tests only).

  python -m jaxvg.prepare features cgstvg ...   CG-STVG's C5 / Video-Swin maps per STVG video
                                                (jaxvg.prepare.cgstvg_features)
"""
from __future__ import annotations

import argparse
import json
import os

import jax.numpy as jnp

import jaxvg.clip
from jaxvg.clip import extract
from jaxvg.errors import UserError


def read_queries(paths: list[str]) -> list[tuple[str, str]]:
  """(qid, query) of every line of the jsonl annotation files, first occurrence of a qid wins."""
  queries: dict[str, str] = {}
  for path in paths:
    if not os.path.isfile(path):
      raise UserError(f'{path}: no such annotation file (--annotations)')
    with open(path) as f:
      for line_no, line in enumerate(f, 1):
        if not line.strip():
          continue
        try:
          row = json.loads(line)
        except json.JSONDecodeError as e:
          raise UserError(f'{path}:{line_no}: invalid JSON ({e})') from None
        for field in ('qid', 'query'):
          if field not in row:
            raise UserError(f'{path}:{line_no}: missing field {field!r}')
        if not isinstance(row['query'], str):
          raise UserError(f'{path}:{line_no}: field \'query\' must be a string')
        queries.setdefault(str(row['qid']), row['query'])
  return list(queries.items())


def parse_args(argv: list[str]) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog='python -m jaxvg.prepare features', description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--clip', required=True, help="weight file / HF directory, or 'random'")
  p.add_argument('--arch', default=None, help='CLIP arch (inferred from the weights if unset)')
  p.add_argument('--frames', default='', help='pre-decoded frames directory (jaxvg.data.frames)')
  p.add_argument('--annotations', nargs='*', default=[], help='jsonl files with qid and query')
  p.add_argument('--out', required=True, help='output root; cache folders are created inside')
  p.add_argument('--layers', type=int, default=4, help='K: last K block outputs kept')
  p.add_argument('--format', choices=sorted(extract.WRITERS), default='npy')
  p.add_argument('--batch-size', type=int, default=64)
  p.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32')
  p.add_argument('--seed', type=int, default=0, help="seed of --clip random")
  args = p.parse_args(argv)
  if not args.frames and not args.annotations:
    p.error('nothing to do: give --frames and/or --annotations')
  if args.clip == 'random' and not args.arch:
    p.error('--clip random needs --arch')
  return args


def main(argv: list[str]) -> int:
  if argv and argv[0] == 'cgstvg':
    from jaxvg.prepare import cgstvg_features
    return cgstvg_features.main(argv[1:])
  args = parse_args(argv)
  dtype = jnp.dtype(args.dtype)
  if args.frames and not os.path.isdir(args.frames):
    raise UserError(f'{args.frames}: no such frames directory (--frames)')
  if args.clip != 'random' and not os.path.isfile(args.clip):
    raise UserError(f'{args.clip}: no such CLIP weight file (--clip)')
  if args.clip == 'random':
    model, params = jaxvg.clip.init_random(args.arch, args.seed, dtype)
  else:
    model, params = jaxvg.clip.load(args.clip, args.arch, dtype)
  name, k = model.arch.name, args.layers
  if args.frames:
    from jaxvg.data.frames import FrameReader
    reader = FrameReader(args.frames)
    out_dir = os.path.join(args.out, extract.cache_dir_name(name, 'vid', k))
    encoder = extract.video_encoder(model, params, k, args.batch_size)
    count = extract.extract_videos(reader.keys(), reader.read, out_dir, encoder, args.format)
    print(f'{out_dir}: {count} videos written')
  if args.annotations:
    out_dir = os.path.join(args.out, extract.cache_dir_name(name, 'txt', k))
    encoder = extract.text_encoder(model, params, k, args.batch_size)
    count = extract.extract_queries(read_queries(args.annotations), out_dir, encoder, args.format)
    print(f'{out_dir}: {count} queries written')
  return 0
