"""How fast CG-STVG learns to box the shape a caption names, on still scenes of the synthetic
renderer: the measurement behind docs/cgstvg.md's diagnosis of the synthetic run, and the core
loop of an MDETR-style pretraining of the grounding transformer.

The official run does not start its encoder from scratch: the backbone, RoBERTa, `input_proj`,
the encoder layers, `bbox_embed` and the decoder keys that match come from MDETR
(`utils/checkpoint.py:_load_mdetr_weight`), a model pretrained to box what a caption names in
still images. Trained from scratch on the benchmark's videos, the synthetic run predicts the mean
box. Here the config's model trains on still frames of random scenes, each captioned "the
<colour> <shape>" (the first words of the benchmark's queries), every frame box-supervised by the
official criterion's box, GIoU and confidence terms (a one-frame clip has no temporal terms). No
other shape in a scene has both the named colour and kind; each shares either with the target
half of the time, as distractors do in the benchmark. `max_shapes=1` shows one shape per scene
(boxing without choosing); the first `curriculum_steps` steps can be shown so too.

  python benchmarks/cgstvg_still_grounding.py [--steps N] [--max_shapes 1|4] ...

`model.grounding_weights = 'synthetic'` makes this the synthetic run's start, as MDETR's
checkpoint is the official run's: `ensure_pretrained` trains every module but the temporal
decoder for `model.grounding_pretrain.steps` once (from the toy ResNet when
`model.resnet_weights` is 'synthetic') and caches the params, keyed by the model and frame
config, as `<cache>/synthetic/grounding-<key>-v<VERSION>.safetensors`.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import linen as nn

from jaxvg.data import synthetic_tubes
from jaxvg.data.tube_examples import resize_frames, tokenizer_folder
from jaxvg.losses.boxes import cxcywh_to_xyxy, paired_iou
from jaxvg.params_file import load_params, save_params
from jaxvg.projects.cgstvg.losses import loss_fn
from jaxvg.projects.cgstvg.model import CGSTVG
from jaxvg.text.roberta_tokenizer import RobertaTokenizer

VERSION = 1
WARMUP_STEPS = 50
VAL_SCENES = 64
COLOURS, SHAPES = tuple(synthetic_tubes.COLOURS), synthetic_tubes.SHAPES
# What a still frame cannot train: the temporal decoder.
TEMPORAL_MODULES = ('time_layers_', 'time_norm', 'temp_embed', 'action_embed')


def captioned_scene(rng: np.random.Generator, num_shapes: int
                    ) -> tuple[list[dict], str]:
  """`num_shapes` still shapes, the first the target, and its caption; no distractor has both
  the target's colour and kind, each shares either with probability 1/2."""
  colour, shape = str(rng.choice(COLOURS)), str(rng.choice(SHAPES))
  attributes = [(colour, shape)]
  while len(attributes) < num_shapes:
    keep = rng.random(2) < 0.5
    candidate = (colour if keep[0] else str(rng.choice(COLOURS)),
                 shape if keep[1] else str(rng.choice(SHAPES)))
    if candidate not in attributes:
      attributes.append(candidate)
  objects = []
  for c, s in attributes:
    radius = float(rng.integers(6, 17))
    objects.append({'colour': c, 'shape': s, 'radius': radius,
                    'x': float(rng.uniform(radius, synthetic_tubes.WIDTH - radius)),
                    'y': float(rng.uniform(radius, synthetic_tubes.HEIGHT - radius))})
  return objects, f'the {colour} {shape}'


def render_scene(objects: list[dict], order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(frame (HEIGHT, WIDTH, 3) uint8 with the shapes drawn in `order`, the first shape's
  normalised cxcywh box)."""
  frame = np.empty((synthetic_tubes.HEIGHT, synthetic_tubes.WIDTH, 3), np.uint8)
  frame[:] = synthetic_tubes.BACKGROUND
  for i in order:
    o = objects[i]
    r = o['radius']
    synthetic_tubes.draw(frame, o, np.array([o['x'] - r, o['y'] - r, o['x'] + r, o['y'] + r]))
  t, width, height = objects[0], synthetic_tubes.WIDTH, synthetic_tubes.HEIGHT
  box = np.array([t['x'] / width, t['y'] / height, 2 * t['radius'] / width,
                  2 * t['radius'] / height], np.float32)
  return frame, box


def scene_batch(config: ml_collections.ConfigDict, tokenizer: RobertaTokenizer,
                rng: np.random.Generator, batch_size: int, max_shapes: int
                ) -> dict[str, np.ndarray]:
  """A batch of one-frame clips in the model's batch layout (`jaxvg.data.tube_examples`), the
  frames resized as the tube pipeline resizes them, 1 to `max_shapes` shapes each (at least 2
  when `max_shapes` > 1)."""
  data = config.data
  frames, boxes = [], []
  tokens = np.full((batch_size, data.max_text_len), config.model.text.pad_token_id, np.int32)
  text_mask = np.zeros((batch_size, data.max_text_len), bool)
  for i in range(batch_size):
    num_shapes = 1 if max_shapes == 1 else int(rng.integers(2, max_shapes + 1))
    objects, caption = captioned_scene(rng, num_shapes)
    frame, box = render_scene(objects, rng.permutation(len(objects)))
    frames.append(resize_frames(frame[None], (data.height, data.width))[0])
    boxes.append(box)
    ids = tokenizer.encode(caption)[:data.max_text_len]
    tokens[i, :len(ids)] = ids
    text_mask[i, :len(ids)] = True
  ones = np.ones((batch_size, 1), bool)
  pixel_mask = np.ones((batch_size, data.height, data.width), bool)
  return {'frames': np.stack(frames)[:, None], 'pixel_mask': pixel_mask, 'frame_mask': ones,
          'tokens': tokens, 'text_mask': text_mask, 'boxes': np.stack(boxes)[:, None],
          'box_mask': ones, 'in_span': ones}


def still_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config the still scenes train: no temporal terms (one frame has no span, so no
  `model.tube_span` either) and no Video-Swin branch (a still frame has no motion to see; the
  video run adds the branch's modules fresh)."""
  still = ml_collections.ConfigDict(config.to_dict())
  still.loss.sted = still.loss.actioness = 0.0
  still.model.use_swin = False
  still.model.tube_span.enabled = False
  return still


def cell_shares(boxes: jax.Array, grid: tuple[int, int]) -> jax.Array:
  """(B, 4) normalised cxcywh boxes -> (B, h * w): the share of each box's area in each cell of
  an h x w grid (rows first, as the encoder flattens C5)."""
  h, w = grid
  x1, y1, x2, y2 = jnp.moveaxis(jnp.clip(cxcywh_to_xyxy(boxes), 0, 1), -1, 0)
  overlap = lambda lo, hi, n: jnp.clip(  # noqa: E731
      jnp.minimum(hi[:, None], (jnp.arange(n) + 1) / n)
      - jnp.maximum(lo[:, None], jnp.arange(n) / n), 0)
  area = overlap(y1, y2, h)[:, :, None] * overlap(x1, x2, w)[:, None, :]
  area = area.reshape(area.shape[0], -1)
  return area / jnp.maximum(area.sum(-1, keepdims=True), 1e-9)


def _tokenizer(config: ml_collections.ConfigDict) -> RobertaTokenizer:
  return RobertaTokenizer.from_folder(tokenizer_folder(config.data), config.data.max_text_len)


def _held_out(config: ml_collections.ConfigDict, tokenizer: RobertaTokenizer, max_shapes: int,
              seed: int) -> dict[str, np.ndarray]:
  return scene_batch(config, tokenizer, np.random.default_rng([seed, 1 << 30]), VAL_SCENES,
                     max_shapes)


def mean_box_iou(config: ml_collections.ConfigDict, max_shapes: int, seed: int = 0) -> float:
  """The held-out IoU of one box for every scene, the targets' mean: a model that cannot choose."""
  boxes = _held_out(config, _tokenizer(config), max_shapes, seed)['boxes']
  mean = np.broadcast_to(boxes.mean((0, 1)), boxes.shape)
  return float(paired_iou(cxcywh_to_xyxy(jnp.asarray(mean)),
                          cxcywh_to_xyxy(jnp.asarray(boxes)))[0].mean())


def train(config: ml_collections.ConfigDict, steps: int, *, batch_size: int = 32,
          learning_rate: float = 3e-4, max_shapes: int = 4, curriculum_steps: int = 0,
          cell_weight: float = 0.0, cosine_decay: bool = False, resnet: Any = None,
          seed: int = 0, eval_every: int = 50,
          log: Callable[[str], None] | None = None) -> tuple[dict[str, Any], list[dict]]:
  """`steps` of AdamW (linear warm-up over WARMUP_STEPS or half the steps, then constant, or a
  cosine decay to 0 with `cosine_decay`; the config's clip and weight decay) on fresh scenes of
  1-`max_shapes` shapes (1 for the first `curriculum_steps`). Returns the params
  of every module but TEMPORAL_MODULES and the history: the loss per step, with `val_iou` (mean
  IoU of the last layer's box with the named shape's, VAL_SCENES held-out scenes of
  `max_shapes`) every `eval_every` steps and at the end. `resnet`: params to start from.

  `cell_weight` > 0 adds a named-cell term (MDETR's reason for pretraining, made dense): a linear
  head on the encoder's visual tokens, softmax over the C5 cells, cross-entropy against the named
  box's share of each cell. It rewards reading the caption in the encoder directly, where the
  one-query box loss rewards it only once the query already attends to the right cell."""
  still = still_config(config)
  frozen = ml_collections.FrozenConfigDict(still)
  tokenizer = _tokenizer(config)
  model = CGSTVG(frozen)
  val = jax.tree.map(jnp.asarray, _held_out(still, tokenizer, max_shapes, seed))
  params = jax.jit(model.init)(jax.random.key(seed), val)['params']
  if resnet is not None:
    params = {**params, 'resnet': resnet}
  cell_head = nn.Dense(1)
  params['cell_head'] = cell_head.init(jax.random.key(seed + 1),
                                       jnp.zeros((1, config.model.hidden)))['params']
  warmup = min(WARMUP_STEPS, steps // 2)
  if cosine_decay:
    schedule = optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup, steps)
  else:
    schedule = optax.join_schedules([optax.linear_schedule(0.0, learning_rate, warmup),
                                     optax.constant_schedule(learning_rate)], [warmup])
  tx = optax.chain(optax.clip_by_global_norm(config.optim.grad_clip),
                   optax.adamw(schedule, weight_decay=config.optim.weight_decay))
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, batch, key):
    def objective(p):
      p = dict(p)
      head = p.pop('cell_head')
      outputs, state = model.apply({'params': p}, batch, train=True, rngs={'dropout': key},
                                   mutable=['intermediates'])
      grid = state['intermediates']['c5'][0].shape[2:4]
      visual = state['intermediates']['encoded'][0][:, 0, :grid[0] * grid[1]]
      logits = cell_head.apply({'params': head}, visual)[..., 0]
      cell_ce = optax.softmax_cross_entropy(logits, cell_shares(batch['boxes'][:, 0], grid))
      return loss_fn(outputs, batch, frozen)[0] + cell_weight * cell_ce.mean(), cell_ce.mean()
    (loss, cell_ce), grads = jax.value_and_grad(objective, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, cell_ce

  @jax.jit
  def held_out_iou(params):
    params = {k: v for k, v in params.items() if k != 'cell_head'}
    boxes = model.apply({'params': params}, val)['boxes'][-1]
    return paired_iou(cxcywh_to_xyxy(boxes), cxcywh_to_xyxy(val['boxes']))[0].mean()

  history = []
  for i in range(steps):
    rng = np.random.default_rng([seed, i])
    batch = scene_batch(still, tokenizer, rng, batch_size,
                        1 if i < curriculum_steps else max_shapes)
    params, opt_state, loss, cell_ce = step(params, opt_state, batch, jax.random.key(i))
    history.append({'step': i + 1, 'loss': float(loss), 'cell_ce': float(cell_ce)})
    if (i + 1) % eval_every == 0 or i + 1 == steps:
      history[-1]['val_iou'] = float(held_out_iou(params))
      if log:
        log(f"step {i + 1}: loss {history[-1]['loss']:.3f}  "
            f"named-cell CE {history[-1]['cell_ce']:.3f}  "
            f"held-out IoU {history[-1]['val_iou']:.3f}")
  return {k: v for k, v in params.items()
          if k != 'cell_head' and not k.startswith(TEMPORAL_MODULES)}, history


def cache_path(config: ml_collections.ConfigDict) -> str:
  """The cache file of `ensure_pretrained`, keyed by what the params depend on: the still
  model's config (pretraining fields included; not the Swin tower's), the frame size, the
  tokenizer and text length, the clip and weight decay."""
  data = config.data
  model = {k: v for k, v in still_config(config).model.to_dict().items()   # neither the tower
           if not k.startswith(('swin_', 'tube_span'))}   # nor the span is part of this model
  key = json.dumps({'model': model, 'frame': [data.height, data.width],
                    'optim': [config.optim.grad_clip, config.optim.weight_decay],
                    'pixel': [list(data.pixel_mean), list(data.pixel_std)],
                    'text': [data.tokenizer, data.max_text_len]}, sort_keys=True, default=str)
  root = data.get('synthetic_root', '') or synthetic_tubes.default_root()
  return os.path.join(root, f'grounding-{hashlib.sha256(key.encode()).hexdigest()[:12]}'
                            f'-v{VERSION}.safetensors')


def ensure_pretrained(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Every parameter but the temporal decoder's, pretrained on captioned still scenes
  (`model.grounding_pretrain`), made once and cached."""
  from jaxvg.projects.cgstvg import synthetic_backbone
  path = cache_path(config)
  if not os.path.exists(path):
    g = config.model.grounding_pretrain
    print(f'pretraining the grounding transformer on captioned still scenes ({g.steps} steps, '
          f'once; cached at {path})', flush=True)
    resnet = (synthetic_backbone.ensure_pretrained(config)
              if config.model.get('resnet_weights', '') == 'synthetic' else None)
    params, _ = train(config, g.steps, batch_size=g.batch_size, learning_rate=g.learning_rate,
                      max_shapes=g.max_shapes, cell_weight=g.cell_weight,
                      cosine_decay=g.cosine_decay, resnet=resnet,
                      eval_every=g.log_every, log=lambda line: print(line, flush=True))
    save_params(params, path)
  return load_params(path)
