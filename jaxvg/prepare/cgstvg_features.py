"""`python -m jaxvg.prepare features cgstvg`: CG-STVG's frozen features into a cache
(layout: `jaxvg.data.tube_features`), read by the tube pipeline with `data.features_dir`.

  python -m jaxvg.prepare features cgstvg --config configs/cgstvg/hcstvg_v1.py \\
      --frames STVG_FRAMES_DIR --out FEATURES_DIR (--weights CGSTVG.pth | --random) \\
      [--swin-weights swin_tiny_patch244_window877_kinetics400_1k.pth] [--chunk 16]

The frames directory is one of `python -m jaxvg.prepare stvg_frames`. ResNet comes from the
CG-STVG checkpoint (`--weights`), Video-Swin-T from `--swin-weights` (default: the same
checkpoint's `vid.` keys); `--random` uses seeded random weights (smoke tests). Videos already in
the cache are skipped; a video that cannot be read or encoded is reported (failures.json, exit
status 1) and the others are written.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from typing import Callable, Iterable

import jax.numpy as jnp
import numpy as np
import tqdm

from jaxvg import configs
from jaxvg.clip.extract import NpyWriter
from jaxvg.data.frames import INDEX_FILE, FrameReader
from jaxvg.data.tube_features import FAILURES_FILE, MAPS
from jaxvg.errors import UserError
from jaxvg.prepare.frames import report


def write_feature_cache(reader: FrameReader, keys: Iterable[str], out: str,
                        encode: Callable[[np.ndarray], dict], maps: tuple[str, ...],
                        dtype: str = 'float16') -> dict:
  """Encodes the videos of `keys` not yet cached; returns the summary (`frames.report`)."""
  writers = {name: NpyWriter(os.path.join(out, MAPS[name])) for name in maps}
  done = set.intersection(*(w.done() for w in writers.values()))
  keys = list(keys)
  todo = [k for k in keys if k not in done]
  failures, written = {}, 0
  for key in tqdm.tqdm(todo, desc='cgstvg features', unit='video'):
    try:
      features = encode(reader.read(key))
      for name in maps:
        writers[name].write(key, np.asarray(features[name], dtype))
      written += 1
    except Exception as e:  # pylint: disable=broad-except  (reported, the rest continues)
      failures[key] = f'{type(e).__name__}: {e}'
  cached = set.intersection(*(w.done() for w in writers.values()))
  index = {}
  for key in (k for k in keys if k in cached):
    ids = reader.frame_ids(key)
    index[key] = {'num_frames': reader.num_frames(key), 'fps': reader.fps(key),
                  **({} if ids is None else {'frame_ids': ids.tolist()})}
  for name, content in ((INDEX_FILE, index), (FAILURES_FILE, failures)):
    fd, tmp = tempfile.mkstemp(dir=out, suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
      json.dump(content, f)
    os.replace(tmp, os.path.join(out, name))
  return {'written': written, 'skipped_done': len(keys) - len(todo), 'failed': failures,
          'total_in_index': len(index)}


def frozen_params(config, weights: str, swin_weights: str) -> tuple[dict, dict | None]:
  """(ResNet parameters, Video-Swin variables or None) from the checkpoint(s), or random."""
  from jaxvg.projects.cgstvg import backbone
  if weights:
    from jaxvg.projects.cgstvg.convert import load_weights
    resnet = load_weights(weights, config)['params']['resnet']
  else:
    from jaxvg.modules.resnet import RESNET_STAGES, ResNet
    resnet = backbone.seeded_variables(ResNet(RESNET_STAGES[config.model.resnet]),
                                       jnp.zeros((1, 32, 32, 3)), config.seed)['params']
  if not config.model.use_swin:
    return resnet, None
  with config.unlocked():
    config.model.swin_weights = swin_weights or weights
  return resnet, backbone.swin_params(config)


def main(argv: list[str]) -> int:
  p = argparse.ArgumentParser(prog='python -m jaxvg.prepare features cgstvg', description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--config', required=True, help='configs/cgstvg/<dataset>.py[:arg]')
  p.add_argument('--frames', required=True, help='a `prepare stvg_frames` directory')
  p.add_argument('--out', required=True)
  source = p.add_mutually_exclusive_group(required=True)
  source.add_argument('--weights', help='official CG-STVG checkpoint (.pth)')
  source.add_argument('--random', action='store_true', help='seeded random weights')
  p.add_argument('--swin-weights', default='', help='Video-Swin-T K400 release (.pth)')
  p.add_argument('--chunk', type=int, default=16, help='frames per ResNet call')
  args = p.parse_args(argv)
  from jaxvg.projects.cgstvg.backbone import FeatureEncoder
  for path, flag in ((args.weights, '--weights'), (args.swin_weights, '--swin-weights')):
    if path and not os.path.isfile(path):
      raise UserError(f'{path}: no such weight file ({flag})')
  if not os.path.isdir(args.frames):
    raise UserError(f'{args.frames}: no such frames directory (--frames)')
  config = configs.load(args.config)
  reader = FrameReader(args.frames)
  encoder = FeatureEncoder(config, *frozen_params(config, args.weights or '', args.swin_weights),
                           chunk=args.chunk)
  maps = ('c5', 'swin') if config.model.use_swin else ('c5',)
  summary = write_feature_cache(reader, reader.keys(), args.out, encoder, maps)
  return report(summary, 'cgstvg features')
