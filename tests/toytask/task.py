"""A deliberately different task that plugs into the engine without touching `jaxvg/train`:
box outputs, its own frozen backbone, its own RNG stream, two optimiser groups (one frozen).

Each record is a 16×16 grey image with one bright square; the frozen backbone is a fixed random
projection of the pixels; the model regresses the square's box (cx, cy, w, h) in [0, 1].
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvg import registry

SIZE = 16


@dataclasses.dataclass(frozen=True)
class SquareRecord:
  qid: int
  box: tuple[float, float, float, float]      # x0, y0, x1, y1 in pixels

  def image(self) -> np.ndarray:
    img = np.zeros((SIZE, SIZE), np.float32)
    x0, y0, x1, y1 = (int(v) for v in self.box)
    img[y0:y1, x0:x1] = 1.0
    return img

  def to_json(self) -> dict:
    return {'qid': self.qid, 'box': list(self.box)}


def records(n: int, seed: int = 0) -> list[SquareRecord]:
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    w, h = rng.integers(3, 8, size=2)
    x0, y0 = rng.integers(0, SIZE - w), rng.integers(0, SIZE - h)
    out.append(SquareRecord(i, (float(x0), float(y0), float(x0 + w), float(y0 + h))))
  return out


@dataclasses.dataclass(frozen=True)
class SquareData:
  """DataAdapter: one image per example; every batch has the same static shape."""

  def length(self, record: SquareRecord) -> int:
    return 1

  def example(self, record: SquareRecord, *, epoch: int, index: int) -> dict:
    return {'record': record}

  def collate(self, examples, length):
    b = len(examples)
    batch = {'pixels': np.zeros((b, SIZE * SIZE), np.float32),
             'box': np.zeros((b, 4), np.float32), 'sample_mask': np.zeros(b, bool)}
    meta = {'qid': [None] * b}
    for i, e in enumerate(examples):
      if e is None:
        continue
      r = e['record']
      x0, y0, x1, y1 = np.asarray(r.box) / SIZE
      batch['pixels'][i] = r.image().ravel()
      batch['box'][i] = ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
      batch['sample_mask'][i] = True
      meta['qid'][i] = r.qid
    return batch, meta


class BoxModel(nn.Module):
  hidden: int

  @nn.compact
  def __call__(self, batch, train: bool = False):
    x = batch['features']
    if train:   # the task's own RNG stream
      x = x + 0.01 * jax.random.normal(self.make_rng('noise'), x.shape)
    x = nn.relu(nn.Dense(self.hidden, name='body')(x))
    bias = self.param('frozen_bias', nn.initializers.zeros, (4,))
    return {'box': jax.nn.sigmoid(nn.Dense(4, name='head')(x) + bias)}


def frozen_backbone(config) -> registry.FrozenBackbone:
  projection = np.random.default_rng(123).standard_normal(
      (SIZE * SIZE, config.model.features)).astype(np.float32) / SIZE

  def encode(params, batch):
    out = {k: v for k, v in batch.items() if k != 'pixels'}
    out['features'] = batch['pixels'] @ params['projection']
    return out
  return registry.FrozenBackbone(params={'projection': projection}, encode=encode)


def loss_fn(outputs, batch, config):
  mask = batch['sample_mask'][:, None].astype(jnp.float32)
  l1 = jnp.sum(jnp.abs(outputs['box'] - batch['box']) * mask) / jnp.maximum(mask.sum() * 4, 1)
  return l1, {'l1': l1}


def param_labels(config, params):
  return {name: jax.tree.map(lambda _: 'frozen' if name == 'frozen_bias' else 'default', sub)
          for name, sub in params.items()}


def dummy_batch(config, batch_size):
  return {'features': jnp.zeros((batch_size, config.model.features)),
          'box': jnp.zeros((batch_size, 4)), 'sample_mask': jnp.ones((batch_size,), bool)}


def postprocess(outputs, metadata, config):
  mask = np.asarray(metadata['sample_mask'], bool)
  return [{'qid': metadata['qid'][i], 'box': np.asarray(outputs['box'][i]).tolist()}
          for i in np.flatnonzero(mask)]


TASK = registry.Task(
    name='toytask.task', build_model=lambda c: BoxModel(c.model.hidden), dummy_batch=dummy_batch,
    make_data=lambda config, **_: SquareData(), postprocess=postprocess,
    frozen_backbone=frozen_backbone,
    training=registry.Training(loss_fn=loss_fn, rng_streams=('noise',),
                               param_labels=param_labels))


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = 'toytask.task'
  c.seed = 0
  c.model = ml_collections.ConfigDict({'features': 32, 'hidden': 32})
  c.data = ml_collections.ConfigDict({'num_workers': 0, 'repeat': 1})
  c.optim = ml_collections.ConfigDict(dict(
      lr=1e-2, weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8, grad_clip=10.0, warmup_steps=0,
      warmup_ratio=1.0, decay_epochs=(), decay_factor=1.0,
      groups={'frozen': {'frozen': True}}))
  c.train = ml_collections.ConfigDict(dict(batch_size=8, eval_batch_size=8, epochs=20,
                                           precision='fp32', ema_decay=0.9))
  c.mesh = ml_collections.ConfigDict({'data': -1, 'model': 1})
  return c
