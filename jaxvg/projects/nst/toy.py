"""NST against its foils on a toy mixed-quality task, end to end on generated data.

A small frozen classifier is trained on clean images (the orientation of a grating among
`classes`); the same clean test images are then scored clean (HQ), degraded (LQ: every image,
a kind and severity drawn per image) and mixed (the protocol's own probability). NST, LoRA and
full fine-tuning of the same two layers are trained on mixed data degraded on device inside the
step (`jaxvg.data.degradations`), from the one base. The table shows each method's accuracy per
split and how far its HQ outputs moved from the base's.

Run: `python benchmarks/nst_toy.py` (the defaults), or `run(ToyConfig(...))`.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from jaxvg.data import degradations as dg
from jaxvg.projects.nst import injection, losses
from jaxvg.projects.nst.config import NSTConfig, PointSpec
from jaxvg.projects.nst.units import QUALITY_COLLECTION

METHODS = ('frozen', 'lora', 'full', 'nst')


class ToyClassifier(nn.Module):
  """(B, H, W, 3) images in [0, 255] → logits. Two exact NST points: the 1×1 conv `proj`
  (32 → 16 channels) and the Dense `fc` (64 → 16), each the sole consumer of its input."""
  classes: int
  NST_INPUTS = {'proj': injection.EXCLUSIVE, 'fc': injection.EXCLUSIVE}

  @nn.compact
  def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
    x = (images.astype(jnp.float32) - 128.0) / 64.0
    x = nn.relu(nn.Conv(32, (5, 5), strides=2, name='stem')(x))
    x = nn.relu(nn.Conv(16, (1, 1), name='proj')(x))
    x = nn.relu(nn.Conv(32, (3, 3), strides=2, name='mid')(x)).mean((1, 2))
    x = nn.relu(nn.Dense(64, name='hidden')(x))
    x = nn.relu(nn.Dense(16, name='fc')(x))
    return {'logits': nn.Dense(self.classes, name='head')(x)}


@dataclasses.dataclass(frozen=True)
class ToyConfig:
  image_size: int = 32
  classes: int = 8
  train_size: int = 4096
  test_size: int = 1024
  batch_size: int = 64
  base_steps: int = 300
  tune_steps: int = 400
  learning_rate: float = 3e-3
  protocol: dg.MixingProtocol = dg.MixingProtocol(
      probability=0.5, kinds=('motion_blur', 'defocus_blur', 'gaussian_noise', 'jpeg'),
      severities=(2, 3, 4))
  nst: NSTConfig = NSTConfig(points=(PointSpec('proj', (1, 2)), PointSpec('fc')),
                             generator_hidden=16, quality_hidden=16, lora_rank=8, lora_alpha=8.0)
  methods: tuple[str, ...] = METHODS
  seed: int = 0


def make_images(rng: np.random.Generator, count: int, size: int, classes: int
                ) -> tuple[np.ndarray, np.ndarray]:
  """Gratings whose orientation is the class, random frequency, phase, contrast and colour,
  over a random colour gradient with mild noise; uint8 (count, size, size, 3)."""
  labels = rng.integers(classes, size=count)
  theta = labels * np.pi / classes
  frequency = rng.uniform(0.08, 0.14, count)
  phase = rng.uniform(0, 2 * np.pi, count)
  contrast = rng.uniform(20, 60, count)
  colour = rng.uniform(0.3, 1.0, (count, 3))
  y, x = np.mgrid[:size, :size].astype(np.float32)
  along = x[None] * np.cos(theta)[:, None, None] + y[None] * np.sin(theta)[:, None, None]
  wave = np.sin(2 * np.pi * frequency[:, None, None] * along + phase[:, None, None])
  images = 128 + (contrast[:, None, None] * wave)[..., None] * colour[:, None, None]
  gradient = rng.uniform(-40, 40, (count, 2, 3))
  images += (x[None, ..., None] / size - 0.5) * gradient[:, None, None, 0] \
      + (y[None, ..., None] / size - 0.5) * gradient[:, None, None, 1]
  images += rng.normal(scale=8, size=images.shape)
  return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int32)


def draw_codes(protocol: dg.MixingProtocol, seed: int, names: list[str]
               ) -> tuple[np.ndarray, np.ndarray]:
  """(kind index, severity) per name under the protocol."""
  draws = [dg.draw(protocol, seed, name) for name in names]
  return (np.array([d.kind_index for d in draws], np.int32),
          np.array([d.severity for d in draws], np.int32))


@functools.partial(jax.jit, static_argnames=('radius_scale',))
def _degrade(images, kinds, severities, key, radius_scale=1.0):
  """Single images as one-frame videos through the on-device mixing ops."""
  return dg.degrade_batch(images[:, None], kinds, severities, key, radius_scale)[:, 0]


def _train(apply: Callable, params: dict, labels_tree: Any, config: ToyConfig, steps: int,
           batches: Callable[[int], dict], quality_weight: float) -> dict:
  """Adam on the trainable leaves (multi_transform + stop_gradient on the frozen ones)."""
  tx = optax.multi_transform({injection.TRAINABLE: optax.adam(config.learning_rate),
                              injection.FROZEN: optax.set_to_zero()}, labels_tree)
  state = tx.init(params)

  @jax.jit
  def step(params, state, batch):
    def loss_fn(params):
      outputs, sown = apply(injection.freeze(params, labels_tree), batch)
      ce = optax.softmax_cross_entropy_with_integer_labels(outputs['logits'],
                                                           batch['labels']).mean()
      bce = (losses.quality_bce(sown[QUALITY_COLLECTION], batch['low_quality'])
             if quality_weight else 0.0)
      return ce + quality_weight * bce
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  for index in range(steps):
    params, state, _ = step(params, state, batches(index))
  return params


def run(config: ToyConfig = ToyConfig(), log: Callable[[str], None] = lambda _: None) -> dict:
  """Trains the base and every method; returns {'rows': {method: metrics}, 'guarantee': ...}."""
  rng = np.random.default_rng(config.seed)
  size, classes = config.image_size, config.classes
  train_images, train_labels = make_images(rng, config.train_size, size, classes)
  test_images, test_labels = make_images(rng, config.test_size, size, classes)
  base_model = ToyClassifier(classes)
  key = jax.random.key(config.seed)
  started = time.perf_counter()

  def sample(index: int) -> np.ndarray:
    return np.random.default_rng([config.seed, index]).integers(config.train_size,
                                                                size=config.batch_size)

  # 1. The base, on clean images only.
  base_params = jax.jit(base_model.init)(key, jnp.asarray(train_images[:2]))['params']
  everything = jax.tree.map(lambda _: injection.TRAINABLE, base_params)
  base_params = _train(lambda p, b: (base_model.apply({'params': p}, b['images']), {}),
                       base_params, everything, config, config.base_steps,
                       lambda i: {'images': train_images[sample(i)],
                                  'labels': train_labels[sample(i)]}, 0.0)
  log(f'base trained ({time.perf_counter() - started:.1f} s)')

  # 2. The test splits: HQ (clean), LQ (every image degraded), mixed (the protocol).
  names = [f'test-{i}' for i in range(config.test_size)]
  always = dataclasses.replace(config.protocol, probability=1.0)
  splits = {}
  for split, protocol in (('hq', None), ('lq', always), ('mixed', config.protocol)):
    if protocol is None:
      splits[split] = jnp.asarray(test_images)
    else:
      kinds, severities = draw_codes(protocol, config.seed + 1, names)
      splits[split] = _degrade(jnp.asarray(test_images), jnp.asarray(kinds),
                               jnp.asarray(severities), jax.random.key(config.seed + 1),
                               config.protocol.radius_scale)

  # 3. Each method from the same base, on mixed data degraded inside the step.
  rows, guarantee, base_logits = {}, {}, None
  for method in config.methods:
    nst = dataclasses.replace(config.nst, method=method)
    model = injection.Tuned(ToyClassifier(classes), nst)
    variables = jax.jit(model.init)(jax.random.key(config.seed + 2), jnp.asarray(train_images[:2]))
    variables = {**variables, 'params': {**variables['params'], 'base': base_params}}
    variables, _ = injection.attach_nullspace(variables, ToyClassifier(classes), nst)
    extra = {k: v for k, v in variables.items() if k != 'params'}
    labels_tree = injection.trainable_labels(variables['params'], nst)

    def apply(params, batch, model=model, extra=extra):
      images = _degrade_in_step(batch, config)
      return model.apply({'params': params, **extra}, images, mutable=['nst_quality'],
                         train_units=True)

    def batches(index):
      chosen = sample(10_000 + index)
      kinds, severities = draw_codes(config.protocol, config.seed,
                                     [f'train-{i}-{index}' for i in chosen])
      return {'images': train_images[chosen], 'labels': train_labels[chosen],
              'kinds': kinds, 'severities': severities,
              'low_quality': (kinds > 0).astype(np.float32),
              'key': jax.random.fold_in(key, index)}

    params = variables['params']
    if method != 'frozen':
      weight = nst.quality_bce_weight if method == 'nst' else 0.0
      params = _train(apply, params, labels_tree, config, config.tune_steps, batches, weight)
    evaluate = jax.jit(lambda p, images, quality=None, model=model, extra=extra:
                       model.apply({'params': p, **extra}, images, quality=quality)['logits'])
    logits = {split: np.asarray(evaluate(params, images)) for split, images in splits.items()}
    if base_logits is None:
      base_logits = np.asarray(jax.jit(lambda p, x: base_model.apply({'params': p}, x)['logits'])(
          base_params, splits['hq']))
    drift = np.abs(logits['hq'] - base_logits).max(axis=1)
    rows[method] = {
        **{f'{split}_accuracy': float((logits[split].argmax(1) == test_labels).mean())
           for split in splits},
        'hq_max_drift': float(drift.max()),
        'hq_unchanged': float((drift <= 1e-5 * np.abs(base_logits).max()).mean()),
        'hq_predictions_changed': float((logits['hq'].argmax(1) != base_logits.argmax(1)).mean()),
        'trainable': int(sum(
            leaf.size for leaf, label in zip(jax.tree.leaves(params), jax.tree.leaves(labels_tree))
            if label == injection.TRAINABLE)),
    }
    if method == 'nst':
      gate = jax.jit(lambda p, images, model=model, extra=extra: jax.tree.leaves(model.apply(
          {'params': p, **extra}, images, mutable=['nst_quality'])[1]))
      for split in ('hq', 'lq'):  # the QAUs' calls as evaluated (hard gate), all points agreeing
        logits_per_point = [np.asarray(logit).reshape(len(test_labels), -1)
                            for logit in gate(params, splits[split])]
        said_lq = np.any([(l > 0).any(axis=1) for l in logits_per_point], axis=0)
        rows[method][f'gate_{split}_correct'] = float((said_lq == (split == 'lq')).mean())
      forced = np.asarray(evaluate(params, splits['hq'], 0.0))
      guarantee = {'q0_max_drift': float(np.abs(forced - base_logits).max()),
                   'q0_relative_drift': float(np.abs(forced - base_logits).max()
                                              / np.abs(base_logits).max())}
    log(f'{method} done ({time.perf_counter() - started:.1f} s)')
  return {'rows': rows, 'guarantee': guarantee, 'seconds': time.perf_counter() - started}


def _degrade_in_step(batch: dict, config: ToyConfig) -> jax.Array:
  if 'kinds' not in batch:
    return batch['images']
  return dg.degrade_batch(batch['images'][:, None], batch['kinds'], batch['severities'],
                          batch['key'], config.protocol.radius_scale)[:, 0]


def format_table(result: dict) -> str:
  """A Markdown table of the result."""
  header = ('| method | HQ acc | LQ acc | mixed acc | HQ max abs logit drift '
            '| HQ outputs unchanged | HQ predictions changed | trainable |')
  lines = [header, '|' + '---|' * 8]
  names = {'frozen': 'frozen base', 'lora': 'LoRA', 'full': 'full FT (same layers)', 'nst': 'NST'}
  for method, row in result['rows'].items():
    lines.append(f"| {names[method]} | {row['hq_accuracy']:.3f} | {row['lq_accuracy']:.3f} | "
                 f"{row['mixed_accuracy']:.3f} | {row['hq_max_drift']:.2e} | "
                 f"{100 * row['hq_unchanged']:.1f} % | "
                 f"{100 * row['hq_predictions_changed']:.1f} % | "
                 f"{row['trainable']:,} |")
  nst = result['rows'].get('nst')
  if nst and 'gate_hq_correct' in nst:
    lines.append(f"\nNST's quality gate (hard, 0.5): HQ test images called HQ at every point "
                 f"{100 * nst['gate_hq_correct']:.1f} %, "
                 f"LQ called LQ {100 * nst['gate_lq_correct']:.1f} %")
  if result['guarantee']:
    lines.append(f"\nNST with q = 0 forced on HQ: "
                 f"max |Δ logit| = {result['guarantee']['q0_max_drift']:.2e} "
                 f"({result['guarantee']['q0_relative_drift']:.1e} of the largest logit)")
  return '\n'.join(lines)
