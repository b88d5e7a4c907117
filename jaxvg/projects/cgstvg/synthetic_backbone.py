"""A toy ResNet pretrained to find and name the synthetic tube benchmark's shapes.

The official CG-STVG starts from MDETR's ResNet-101, a backbone that already localises what a
caption names; no such weights can be downloaded here. This gives the embedded benchmark the same
kind of start: the config's ResNet (stages, width) trained with a dense detection objective on
still frames of random scenes drawn by the benchmark's renderer (not the benchmark's videos).
Every C5 cell predicts whether a shape's centre lies in it and, if so, that shape's colour, kind
and box (its centre within the cell and its size): what the grounding model later reads from the
map. On its own it does not make the synthetic run's boxes learn (docs/cgstvg.md).

Deterministic (seeded scenes, CPU XLA) and cached on first use as
`<cache>/synthetic/resnet-<model.resnet>-w<width>[-dc5]-<H>x<W>-v<VERSION>.safetensors`; a config
selects it with
`model.resnet_weights = 'synthetic'` (`jaxvg.projects.cgstvg.task.pretrained_params`).
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import linen as nn

from jaxvg.data import synthetic_tubes
from jaxvg.modules.resnet import ResNet
from jaxvg.params_file import load_params, save_params
from jaxvg.projects.cgstvg.model import normalise_frames, resnet_module

VERSION = 1
STEPS = 400
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
BOX_WEIGHT = 5.0
COLOURS, SHAPES = tuple(synthetic_tubes.COLOURS), synthetic_tubes.SHAPES
HEAD_OUTPUTS = 1 + len(COLOURS) + len(SHAPES) + 4   # objectness, colour, shape, box


class CellDetector(nn.Module):
  """ResNet C5 and a 1x1 head: per cell the objectness logit, colour and shape logits, and the
  box (sigmoid: centre within the cell, width and height relative to the frame)."""
  resnet: ResNet

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    return nn.Dense(HEAD_OUTPUTS, name='head')(self.resnet(images))


def random_scene(rng: np.random.Generator) -> list[dict]:
  """1-4 still shapes of the benchmark's colours, kinds and sizes, anywhere in the frame."""
  objects = []
  for _ in range(int(rng.integers(1, 5))):
    radius = float(rng.integers(6, 17))
    objects.append({'colour': str(rng.choice(COLOURS)), 'shape': str(rng.choice(SHAPES)),
                    'radius': radius,
                    'x': float(rng.uniform(radius, synthetic_tubes.WIDTH - radius)),
                    'y': float(rng.uniform(radius, synthetic_tubes.HEIGHT - radius))})
  return objects


def scene_example(objects: list[dict], grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
  """(frame (HEIGHT, WIDTH, 3) uint8, targets (h, w, 4 + 4)): per cell [has object, colour id,
  shape id, motion id (the object's 'motion', 0 = still), cx in cell, cy in cell, w, h] of the
  topmost shape whose centre it holds."""
  frame = np.empty((synthetic_tubes.HEIGHT, synthetic_tubes.WIDTH, 3), np.uint8)
  frame[:] = synthetic_tubes.BACKGROUND
  h, w = grid
  cell_w, cell_h = synthetic_tubes.WIDTH / w, synthetic_tubes.HEIGHT / h
  targets = np.zeros((h, w, 8), np.float32)
  for obj in objects:               # later shapes are drawn over (and win cells from) earlier
    r = obj['radius']
    synthetic_tubes.draw(frame, obj, np.array([obj['x'] - r, obj['y'] - r,
                                               obj['x'] + r, obj['y'] + r]))
    col, row = int(obj['x'] // cell_w), int(obj['y'] // cell_h)
    targets[row, col] = [1, COLOURS.index(obj['colour']), SHAPES.index(obj['shape']),
                         obj.get('motion', 0),
                         obj['x'] / cell_w - col, obj['y'] / cell_h - row,
                         2 * r / synthetic_tubes.WIDTH, 2 * r / synthetic_tubes.HEIGHT]
  return frame, targets


def grid_shape(height: int, width: int, stride: int) -> tuple[int, int]:
  return -(-height // stride), -(-width // stride)


def scene_batch(seed: int, step: int, batch_size: int, grid: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng([VERSION, seed, step])
  frames, targets = zip(*(scene_example(random_scene(rng), grid) for _ in range(batch_size)))
  return np.stack(frames), np.stack(targets)


def detection_loss(outputs: jax.Array, targets: jax.Array) -> tuple[jax.Array, dict]:
  """Objectness BCE over every cell; colour and shape CE and BOX_WEIGHT x L1 box on cells with
  an object."""
  has = targets[..., 0]
  objectness = optax.sigmoid_binary_cross_entropy(outputs[..., 0], has).mean()
  n_col = len(COLOURS)
  colour = optax.softmax_cross_entropy_with_integer_labels(
      outputs[..., 1:1 + n_col], targets[..., 1].astype(jnp.int32))
  shape = optax.softmax_cross_entropy_with_integer_labels(
      outputs[..., 1 + n_col:-4], targets[..., 2].astype(jnp.int32))
  box = jnp.abs(jax.nn.sigmoid(outputs[..., -4:]) - targets[..., 4:]).sum(-1)
  count = jnp.maximum(has.sum(), 1)
  per_object = lambda x: (x * has).sum() / count  # noqa: E731
  terms = {'objectness': objectness, 'colour': per_object(colour), 'shape': per_object(shape),
           'box': per_object(box)}
  return objectness + terms['colour'] + terms['shape'] + BOX_WEIGHT * terms['box'], terms


def fit(model: nn.Module, sample: jax.Array, make_batch: Callable[[int], tuple[Any, Any]],
        loss: Callable[[jax.Array, jax.Array], tuple[jax.Array, dict]], steps: int, seed: int,
        name: str = '', log_every: int = 0) -> tuple[dict[str, Any], list[dict]]:
  """(params, per-step loss terms): `steps` of AdamW (LEARNING_RATE, warm-up over a tenth,
  cosine decay) of `model` on `make_batch(step)` = (inputs, targets), initialised on `sample`;
  the terms printed every `log_every` steps as `name`'s."""
  params = model.init(jax.random.key(seed), sample)['params']
  tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, LEARNING_RATE, steps // 10, steps),
                   weight_decay=1e-4)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, inputs, targets):
    def loss_fn(p):
      return loss(model.apply({'params': p}, inputs), targets)
    (value, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, {'loss': value, **terms}

  history = []
  for i in range(steps):
    params, opt_state, terms = step(params, opt_state, *make_batch(i))
    history.append({k: float(v) for k, v in terms.items()})
    if log_every and (i + 1) % log_every == 0:
      print(f'{name} step {i + 1}/{steps}: ' +
            ' '.join(f'{k} {v:.3f}' for k, v in history[-1].items()), flush=True)
  return params, history


@functools.partial(jax.jit, static_argnums=1)
def resized_images(frames: jax.Array, data: ml_collections.FrozenConfigDict) -> jax.Array:
  """(..., HEIGHT, WIDTH, 3) uint8 renders -> the model's normalised (..., H, W, 3) inputs,
  resized (bilinear, rounded to uint8) to the config's data.height x data.width."""
  size = (data.height, data.width)
  lead = frames.shape[:-3]
  flat = frames.reshape((-1,) + frames.shape[-3:])
  resized = jax.image.resize(flat.astype(jnp.float32), (flat.shape[0],) + size + (3,),
                             'bilinear')
  resized = jnp.clip(jnp.round(resized), 0, 255).astype(jnp.uint8)
  images = normalise_frames(resized[:, None], jnp.ones((flat.shape[0],) + size, bool), data)
  return images[:, 0].reshape(lead + size + (3,))


def pretrain(config: ml_collections.ConfigDict, steps: int = STEPS, batch_size: int = BATCH_SIZE,
             seed: int = 0, log_every: int = 0) -> tuple[dict[str, Any], list[dict]]:
  """(the ResNet's params, per-step loss terms): `steps` of AdamW on fresh scenes, frames
  resized (bilinear) to the config's data.height x data.width."""
  data = ml_collections.FrozenConfigDict(config.data)
  model = CellDetector(resnet_module(config.model))
  grid = grid_shape(data.height, data.width, model.resnet.stride)

  def make_batch(i):
    frames, targets = scene_batch(seed, i, batch_size, grid)
    return resized_images(frames, data), targets

  params, history = fit(model, jnp.zeros((1, data.height, data.width, 3)), make_batch,
                        detection_loss, steps, seed, 'synthetic ResNet pretraining', log_every)
  return params['resnet'], history


def cache_path(config: ml_collections.ConfigDict) -> str:
  m, data = config.model, config.data
  root = data.get('synthetic_root', '') or synthetic_tubes.default_root()
  dc5 = '-dc5' if m.resnet_dilation else ''
  return os.path.join(root, f'resnet-{m.resnet}-w{m.resnet_width}{dc5}-{data.height}x{data.width}'
                            f'-v{VERSION}.safetensors')


def ensure_pretrained(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The pretrained ResNet params for the config's ResNet and frame size (made if missing)."""
  path = cache_path(config)
  if not os.path.exists(path):
    print(f'pretraining the toy ResNet on synthetic scenes (once; cached at {path})')
    save_params(pretrain(config, log_every=100)[0], path)
  return load_params(path)
