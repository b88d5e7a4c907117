"""`python -m jaxvg.prepare features cgstvg`: CG-STVG's frozen features into a cache
(layout: `jaxvg.data.tube_features`), read by the tube pipeline with `data.features_dir`.

  python -m jaxvg.prepare features cgstvg --config configs/cgstvg/hcstvg_v1.py \\
      --frames STVG_FRAMES_DIR --out FEATURES_DIR (--weights CGSTVG.pth | --random) \\
      [--swin-weights swin_tiny_patch244_window877_kinetics400_1k.pth] [--chunk 16] \\
      [--splits train,test]

The frames directory is one of `python -m jaxvg.prepare stvg_frames`. ResNet comes from the
CG-STVG checkpoint (`--weights`), Video-Swin-T from `--swin-weights` (default: the same
checkpoint's `vid.` keys); `--random` uses seeded random weights (smoke tests). Videos already in
the cache are skipped; a video that cannot be read or encoded is reported (failures.json, exit
status 1) and the others are written. With `data.test_halves` the tower also runs on each video's
even and odd frames apart (`cgstvg_swin_halves`, what the official test's two clips see). When
the config freezes the text tower (`model.text.frozen`), RoBERTa's states of every query of
`--splits` are cached too, keyed by their token ids (`data.tokenizer`).
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
from jaxvg.data.tube_features import FAILURES_FILE, MAPS, TEXT_DIR, text_key
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
    from jaxvg.projects.cgstvg.model import resnet_module
    resnet = backbone.seeded_variables(resnet_module(config.model), jnp.zeros((1, 32, 32, 3)),
                                       config.seed)['params']
  if not config.model.use_swin:
    return resnet, None
  with config.unlocked():
    config.model.swin_weights = swin_weights or weights
  return resnet, backbone.swin_params(config)


def text_params(config, weights: str) -> dict:
  """RoBERTa's parameters from the CG-STVG checkpoint, or seeded random ones."""
  if weights:
    from jaxvg.projects.cgstvg.convert import load_weights
    return load_weights(weights, config)['params']['roberta']
  from jaxvg.modules.roberta import Roberta
  from jaxvg.projects.cgstvg import backbone
  from jaxvg.projects.cgstvg.model import roberta_arch
  ids = jnp.zeros((1, 2), jnp.int32)
  return backbone.seeded_variables(Roberta(roberta_arch(config.model)), ids, config.seed,
                                   ids != 0)['params']


def write_text_cache(token_lists: Iterable[np.ndarray], out: str,
                     encode: Callable[[list[np.ndarray]], list[np.ndarray]],
                     dtype: str = 'float16') -> dict:
  """The text states of every distinct token sequence not yet cached (`tube_features.text_key`);
  returns {'written', 'skipped_done'}."""
  writer = NpyWriter(os.path.join(out, TEXT_DIR))
  done = writer.done()
  distinct = {text_key(t): np.asarray(t, np.int32) for t in token_lists}
  todo = [key for key in distinct if key not in done]
  states = encode([distinct[key] for key in todo])
  for key, value in zip(todo, states):
    writer.write(key, np.asarray(value, dtype))
  return {'written': len(todo), 'skipped_done': len(distinct) - len(todo)}


def split_queries(config, splits: Iterable[str]) -> list[str]:
  """The queries of the dataset's `splits` (a cache trains unflipped: the stored text only)."""
  from jaxvg.data.pipeline import load_records
  return [r.query for split in splits
          for r in load_records(config, split, train=False, skip_bad=True)]


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
  p.add_argument('--splits', default='',
                 help='with model.text.frozen: the comma-separated splits whose queries get '
                      'text states (default: data.train_split and data.val_split)')
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
  if config.model.use_swin and config.data.get('test_halves', False):
    maps += ('swin_halves',)
  summary = write_feature_cache(reader, reader.keys(), args.out, encoder, maps)
  status = report(summary, 'cgstvg features')
  if config.model.text.get('frozen', False):
    if not config.data.get('tokenizer', ''):
      raise UserError('model.text.frozen caches text states by token ids: set data.tokenizer')
    from jaxvg.data.tube_examples import tokenizer_folder
    from jaxvg.projects.cgstvg.backbone import TextEncoder
    from jaxvg.text.roberta_tokenizer import RobertaTokenizer
    tokenizer = RobertaTokenizer.from_folder(tokenizer_folder(config.data),
                                             config.data.max_text_len)
    splits = (args.splits.split(',') if args.splits
              else (config.data.train_split, config.data.val_split))
    tokens = [tokenizer.encode(q) for q in split_queries(config, splits)]
    text = write_text_cache(tokens, args.out,
                            TextEncoder(config, text_params(config, args.weights or '')))
    print(f"cgstvg text states: {text['written']} written, {text['skipped_done']} already done")
  return status
