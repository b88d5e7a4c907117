"""A tiny Video-Swin pretrained to see the synthetic tube benchmark's shapes move.

The benchmark's actions are motion alone: 'the red square that moves left' differs from a red
square standing still, or moving up, only across frames. The official CG-STVG reads motion from
its frozen Kinetics-400 Video-Swin-T, which cannot be downloaded here; without it the model sees
each frame alone until the temporal decoder (docs/cgstvg.md). This gives the synthetic config the
same kind of tower: the config's Video-Swin (`model.swin_tower`) trained on clips of random
moving scenes drawn by the benchmark's renderer (not the benchmark's videos), frames taken a few
raw frames apart as the tube pipeline samples them. Every cell of its last map predicts, per
frame, whether a shape's centre lies in it and that shape's motion (still, left, right, up,
down), colour, kind and box: the toy ResNet's dense objective (`synthetic_backbone`) plus motion.

With one-frame patches (Video-Swin's, and the synthetic config's) the tower learns the dense
terms but not motion in this pretraining: its frames meet only in window attention. A patch
embedding over three frames (`model.swin_tower.patch_frames = 3`) gives it pixel motion to
learn from; docs/cgstvg.md has the trials and why the config keeps one frame.

Deterministic (seeded scenes, CPU XLA) and cached on first use as
`<cache>/synthetic/swin-<tower>-<H>x<W>-v<VERSION>.safetensors`; a config selects it with
`model.swin_weights = 'synthetic'` (`jaxvg.projects.cgstvg.backbone.swin_params`).
"""
from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import scipy.special
import scipy.stats
from flax import linen as nn

from jaxvg.data import synthetic_tubes
from jaxvg.modules.video_swin import VideoSwin, VideoSwinArch
from jaxvg.params_file import load_params, save_params
from jaxvg.projects.cgstvg.backbone import swin_arch, swin_stride
from jaxvg.projects.cgstvg.synthetic_backbone import (HEAD_OUTPUTS, detection_loss, fit,
                                                      grid_shape, resized_images, scene_example)

VERSION = 1
STEPS = 300
BATCH_SIZE = 8                 # clips
CLIP_FRAMES = 16               # the synthetic config's data.max_frames
FRAME_GAPS = (3, 4, 5, 6)      # raw frames between sampled ones (1.6 fps of 5 fps, cropped or not)
MOTIONS = ('still',) + tuple(synthetic_tubes.ACTIONS)
MOTION_WEIGHT = 2.0
VAL_CLIPS = 16


class MotionCellDetector(nn.Module):
  """The tower's last map and a 1x1 head: per cell and frame the motion logits, then the toy
  ResNet's outputs (objectness, colour, shape, box)."""
  arch: VideoSwinArch

  @nn.compact
  def __call__(self, clips: jax.Array) -> jax.Array:
    features = VideoSwin(self.arch, name='swin')(clips)[-1]
    return nn.Dense(len(MOTIONS) + HEAD_OUTPUTS, name='head')(features)


def moving_scene(rng: np.random.Generator, first: int, last: int) -> list[dict]:
  """1-4 shapes in the benchmark's object format (`synthetic_tubes.object_boxes`), each
  visible over most of raw frames [first, last] and moving one way over part of it."""
  objects = []
  for _ in range(int(rng.integers(1, 5))):
    radius = float(rng.integers(6, 17))
    action = str(rng.choice(list(synthetic_tubes.ACTIONS)))
    act_start = int(rng.integers(first - 10, last + 1))
    act_end = act_start + int(rng.integers(8, 31))
    x, y = synthetic_tubes.start_point(rng, radius, action, act_end - act_start)
    objects.append({'colour': str(rng.choice(list(synthetic_tubes.COLOURS))),
                    'shape': str(rng.choice(synthetic_tubes.SHAPES)), 'action': action,
                    'radius': radius, 'x': x, 'y': y,
                    'visible': [int(rng.integers(first - 20, first + 10)),
                                int(rng.integers(last - 10, last + 20))],
                    'act_start': act_start, 'act_end': act_end})
  return objects


def clip_example(objects: list[dict], frame_ids: np.ndarray, grid: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray]:
  """(frames (T, HEIGHT, WIDTH, 3) uint8, targets (T, h, w, 8)) at raw frames `frame_ids`; the
  targets are `scene_example`'s with the motion id: the shape's action (1 + its index in
  ACTIONS) on a raw frame from which it moves on, 0 (still) otherwise."""
  tracks = [synthetic_tubes.object_boxes(obj) for obj in objects]
  frames, targets = [], []
  for t in frame_ids:
    shown = []
    for obj, (boxes, visible) in zip(objects, tracks):
      if visible[t]:
        moving = obj['act_start'] <= t < obj['act_end']
        shown.append({**obj, 'x': float(boxes[t, 0] + obj['radius']),
                      'y': float(boxes[t, 1] + obj['radius']),
                      'motion': MOTIONS.index(obj['action']) if moving else 0})
    frame, target = scene_example(shown, grid)
    frames.append(frame)
    targets.append(target)
  return np.stack(frames), np.stack(targets)


def clip_batch(seed: int, step: int, batch_size: int, grid: tuple[int, int],
               frames: int = CLIP_FRAMES) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng([VERSION, seed, step])
  clips, targets = [], []
  for _ in range(batch_size):
    gap = int(rng.choice(FRAME_GAPS))
    start = int(rng.integers(0, synthetic_tubes.NUM_FRAMES - gap * (frames - 1)))
    frame_ids = start + gap * np.arange(frames)
    clip, target = clip_example(moving_scene(rng, frame_ids[0], frame_ids[-1]), frame_ids, grid)
    clips.append(clip)
    targets.append(target)
  return np.stack(clips), np.stack(targets)


def motion_loss(outputs: jax.Array, targets: jax.Array) -> tuple[jax.Array, dict]:
  """`detection_loss` on every frame plus MOTION_WEIGHT x the motion CE on cells with a shape."""
  loss, terms = detection_loss(outputs[..., len(MOTIONS):], targets)
  has = targets[..., 0]
  motion = optax.softmax_cross_entropy_with_integer_labels(
      outputs[..., :len(MOTIONS)], targets[..., 3].astype(jnp.int32))
  terms['motion'] = (motion * has).sum() / jnp.maximum(has.sum(), 1)
  return loss + MOTION_WEIGHT * terms['motion'], terms


def motion_scores(logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
  """What the motion logits (..., len(MOTIONS)) know, on the cells with a shape: the accuracy
  and the share of still shapes (a blind tower's accuracy), the AUC of P(moving) between moving
  and still shapes and, on the moving ones, the accuracy of the likeliest direction. The last
  two show a partly learned motion that the accuracy hides while 'still' wins every argmax."""
  has = targets[..., 0] == 1
  motion = targets[..., 3].astype(np.int64)[has]
  logits = logits[has].astype(np.float64)
  moving = motion > 0
  # P(moving) ranks as the still logit's margin below the others' log-sum-exp.
  margin = scipy.special.logsumexp(logits[:, 1:], axis=-1) - logits[:, 0]
  ranks = scipy.stats.rankdata(margin)
  n_moving, n_still = int(moving.sum()), int((~moving).sum())
  auc = (ranks[moving].sum() - n_moving * (n_moving + 1) / 2) / max(n_moving * n_still, 1)
  return {'val_motion_accuracy': float((logits.argmax(-1) == motion).mean()),
          'val_still_share': float((~moving).mean()),
          'val_moving_auc': float(auc),
          'val_direction_accuracy': float(
              (logits[moving, 1:].argmax(-1) + 1 == motion[moving]).mean())}


def pretrain(config: ml_collections.ConfigDict, steps: int = STEPS, batch_size: int = BATCH_SIZE,
             frames: int = CLIP_FRAMES, seed: int = 0, log_every: int = 0
             ) -> tuple[dict[str, Any], list[dict]]:
  """(the tower's params, per-step loss terms): `steps` of AdamW on fresh clips of
  `frames` frames, resized (bilinear) to the config's data.height x data.width. The last entry
  also holds `motion_scores` on VAL_CLIPS held-out clips."""
  data = ml_collections.FrozenConfigDict(config.data)
  arch = swin_arch(config)
  grid = grid_shape(data.height, data.width, swin_stride(arch))

  def make_batch(i):
    clips, targets = clip_batch(seed, i, batch_size, grid, frames)
    return resized_images(clips, data), targets

  model = MotionCellDetector(arch)
  params, history = fit(model, jnp.zeros((1, frames, data.height, data.width, 3)), make_batch,
                        motion_loss, steps, seed, 'synthetic Video-Swin pretraining',
                        log_every)
  clips, targets = clip_batch(seed, 1 << 30, VAL_CLIPS, grid, frames)   # never a train step
  logits = jax.jit(model.apply)({'params': params}, resized_images(clips, data))
  history[-1].update(motion_scores(np.asarray(logits[..., :len(MOTIONS)]), targets))
  if log_every:
    h = history[-1]
    print(f"held-out motion on cells with a shape: accuracy {h['val_motion_accuracy']:.3f} "
          f"(all still: {h['val_still_share']:.3f}), moving-vs-still AUC "
          f"{h['val_moving_auc']:.3f} (blind: 0.5), direction of the moving "
          f"{h['val_direction_accuracy']:.3f} (blind: 0.25)", flush=True)
  return params['swin'], history


def cache_path(config: ml_collections.ConfigDict) -> str:
  t, data = config.model.swin_tower, config.data
  root = data.get('synthetic_root', '') or synthetic_tubes.default_root()
  tower = '-'.join([f'e{t.embed_dim}', 'd' + ''.join(map(str, t.depths)),
                    'h' + ''.join(map(str, t.heads)), 'w' + ''.join(map(str, t.window)),
                    'p' + ''.join(map(str, t.patch))] +
                   ([f'f{t.patch_frames}'] if t.patch_frames else []))
  return os.path.join(root, f'swin-{tower}-{data.height}x{data.width}-v{VERSION}.safetensors')


def ensure_pretrained(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The tower's variables for the config's `model.swin_tower` and frame size (made if
  missing)."""
  path = cache_path(config)
  if not os.path.exists(path):
    print(f'pretraining the toy Video-Swin on moving synthetic scenes (once; cached at {path})',
          flush=True)
    save_params(pretrain(config, log_every=50)[0], path)
  return {'params': load_params(path)}
