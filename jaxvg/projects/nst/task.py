"""The 'nst' task: a trained CG-STVG frozen, NST (or a foil: LoRA, full fine-tuning of the same
layers, the frozen base) tuned on mixed-quality video degraded on device inside the step.

The base checkpoint is `nst.base_checkpoint` (an official `.pth` or a `cgstvg` run directory).
Training starts from it through the engine's `init_from` (`load_weights` returns the base under
'base' and fresh units); the frozen backbone carries the null-space bases computed from it.
Every base parameter is labelled 'frozen' (the engine's optimiser gives it `set_to_zero`) and
read through stop_gradient (`injection.frozen_base`).

Modes (the task's runner; the engine trains and predicts):
  info   per injection point: layer, kernel shape, input kind, null-space dimension; last line
         the trainable parameter count
  train  the engine's loop, from the base checkpoint (resumes from the workdir's)
  eval   the mixed-quality benchmark: HQ / LQ / mixed metrics and HQ(tuned) - HQ(frozen base)
  predict  the engine's submission file of the val split (split `degrade.split`)
"""
from __future__ import annotations

import json

import jax
import ml_collections

from jaxvg import registry
from jaxvg.errors import UserError
from jaxvg.modules import nullspace
from jaxvg.projects.cgstvg import task as cgstvg_task
from jaxvg.projects.nst import benchmark, cgstvg, data, injection, losses
from jaxvg.projects.nst.config import unlocked_copy

_BASE = cgstvg_task.TASK


def make_data(config: ml_collections.ConfigDict, *, train: bool, seed: int,
              process_count: int) -> data.MixedQualityData:
  def inner(frames_dir: str):
    inner_config = unlocked_copy(config)
    inner_config.data.frames_dir = frames_dir
    return _BASE.make_data(inner_config, train=train, seed=seed, process_count=process_count)
  d = config.degrade
  split = 'mixed' if train else d.split
  return data.MixedQualityData(
      inner(config.data.frames_dir), data.split_protocol(data.protocol(config), split),
      seed=d.seed, per_epoch=train and d.train_per_epoch,
      h264=inner(d.h264_frames_dir) if d.h264_frames_dir else None)


def load_weights(path: str, config: ml_collections.ConfigDict):
  """The untrained tuned model from a base checkpoint (must be `nst.base_checkpoint`, the one
  the null-space bases come from)."""
  if path != config.nst.base_checkpoint:
    raise UserError(f'{path}: NST starts from nst.base_checkpoint '
                    f'({config.nst.base_checkpoint!r}), where its null-space bases come from')
  return cgstvg.tuned_params(cgstvg.load_base(path, config), config, jax.random.key(config.seed))


def frozen_backbone(config: ml_collections.ConfigDict) -> registry.FrozenBackbone:
  """The bases ({} for the foils) and the on-device degradation."""
  method = config.nst.method
  bases = (cgstvg.bases(cgstvg.load_base(config.nst.base_checkpoint, config), config)
           if method == 'nst' else {})
  radius_scale = float(config.degrade.radius_scale)

  def encode(frozen, batch):
    batch = cgstvg.degrade(batch, radius_scale)
    return {**batch, cgstvg.BASES_KEY: frozen} if frozen else batch
  return registry.FrozenBackbone(params=bases, encode=encode)


def loss_fn(outputs, batch, config):
  """CG-STVG's loss, plus the QAU's BCE against the HQ/LQ label of each real frame."""
  outputs = dict(outputs)
  logits = outputs.pop(cgstvg.QUALITY_KEY, None)
  loss, terms = _BASE.training.loss_fn(outputs, batch, config)
  weight = float(config.nst.quality_bce_weight)
  if logits and weight:
    mask = batch['frame_mask'] & batch['sample_mask'][:, None]
    bce = losses.quality_bce(logits, batch['degrade_kind'] > 0, mask)
    loss = loss + weight * bce
    terms = {**terms, 'quality_bce': bce}
  return loss, terms


def param_labels(config: ml_collections.ConfigDict, params):
  """'frozen' for the base (but the layers 'full' fine-tunes), 'default' for the units."""
  labels = injection.trainable_labels(params, cgstvg.nst_config(config))
  return jax.tree.map(lambda label: 'default' if label == injection.TRAINABLE else 'frozen',
                      labels)


def info_lines(config: ml_collections.ConfigDict) -> list[str]:
  """`describe`'s lines: the base from `nst.base_checkpoint`, or freshly initialised without one
  (then said on the first line)."""
  lines = [f'task: nst ({config.nst.method}) on CG-STVG']
  base = None
  if config.nst.base_checkpoint:
    base = cgstvg.load_base(config.nst.base_checkpoint, config)
  else:
    lines.append('base: freshly initialised (nst.base_checkpoint is empty)')
  params = cgstvg.tuned_params(base, config, jax.random.key(config.seed))
  variables = {'params': params, nullspace.COLLECTION: cgstvg.bases(params['base'], config)}
  model = cgstvg.build_model(config)
  return lines + injection.describe(variables, model.base, model.nst)


def runner(config: ml_collections.ConfigDict, workdir: str | None, mode: str) -> None:
  from jaxvg.train import trainer  # the engine, for the modes it runs
  if mode == 'info':
    print('\n'.join(info_lines(config)))
  elif mode == 'eval':
    result = benchmark.evaluate(config, workdir)
    print(benchmark.format_result(result))
    print(json.dumps(result, indent=2))
  elif not workdir:
    raise UserError(f'--workdir is required for --mode {mode}')
  elif mode == 'train':
    if config.nst.method == 'frozen':
      raise UserError("nst.method 'frozen' trains nothing: --mode eval scores the base")
    trainer.train_and_evaluate(config, workdir, init_from=config.nst.base_checkpoint or None)
  else:
    trainer.predict_split(config, workdir, 'best')


TASK = registry.Task(
    name='nst',
    build_model=cgstvg.build_model,
    dummy_batch=_BASE.dummy_batch,
    make_data=make_data,
    postprocess=_BASE.postprocess,
    load_weights=load_weights,
    frozen_backbone=frozen_backbone,
    training=registry.Training(loss_fn=loss_fn, rng_streams=_BASE.training.rng_streams,
                               param_labels=param_labels),
    runner=runner,
)
