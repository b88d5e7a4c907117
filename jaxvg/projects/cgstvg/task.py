"""The 'cgstvg' task: CG-STVG's model, tube data, loss, post-processing and official weights for
the engine."""
from __future__ import annotations

import ml_collections

from jaxvg import registry
from jaxvg.data.tube_examples import TubeData
from jaxvg.data.tube_features import CachedTubeData
from jaxvg.errors import UserError
from jaxvg.projects.cgstvg.backbone import frozen_swin, swin_arch, swin_stride
from jaxvg.projects.cgstvg.config import base_config
from jaxvg.projects.cgstvg.convert import load_weights
from jaxvg.projects.cgstvg.losses import loss_fn
from jaxvg.projects.cgstvg.model import CGSTVG, dummy_batch, resnet_module
from jaxvg.projects.cgstvg.optim import make_optimizer, param_labels
from jaxvg.projects.cgstvg.postprocess import postprocess
from jaxvg.projects.cgstvg.predictor import VideoPredictor
from jaxvg.projects.cgstvg.span_fit import final_stage


def build_model(config: ml_collections.ConfigDict) -> CGSTVG:
  m = config.model
  if m.use_swin:
    c5, swin = resnet_module(m).stride, swin_stride(swin_arch(config))
    if c5 != swin:
      raise UserError(f'model.swin_tower gives a stride-{swin} map, but the ResNet C5 is at '
                      f'stride {c5} (model.resnet_dilation {m.resnet_dilation}): the two grids '
                      'are read cell by cell, so their strides must match')
  return CGSTVG(config)


def make_data(config: ml_collections.ConfigDict, *, train: bool, seed: int,
              process_count: int) -> TubeData | CachedTubeData:
  """Frames through the model's own ResNet, or the frozen maps of `prepare features cgstvg`."""
  source = CachedTubeData if config.data.get('features_dir') else TubeData
  data = source.from_config(config, train=train, seed=seed, process_count=process_count)
  tokenizer = data.tubes.tokenizer if isinstance(data, CachedTubeData) else data.tokenizer
  vocab = config.model.text.vocab_size
  if tokenizer is not None and tokenizer.vocab_size > vocab:
    raise UserError(f'data.tokenizer {config.data.tokenizer!r} has {tokenizer.vocab_size} '
                    f'tokens; model.text.vocab_size is {vocab}')
  return data


def load_params(path: str, config: ml_collections.ConfigDict):
  return load_weights(path, config)['params']


def pretrained_params(config: ml_collections.ConfigDict):
  """The pretrained subtree the config names: every module but the temporal decoder with
  `model.grounding_weights`, else the ResNet with `model.resnet_weights`, else None."""
  m = config.model
  for field in ('resnet_weights', 'grounding_weights'):
    if m.get(field, '') not in ('', 'synthetic'):
      raise UserError(f"model.{field} must be '' or 'synthetic', got {m[field]!r} (official "
                      'weights come with the whole model: --init_from)')
  if m.get('grounding_weights', ''):
    from jaxvg.projects.cgstvg import still_grounding
    return still_grounding.ensure_pretrained(config)
  if m.get('resnet_weights', ''):
    from jaxvg.projects.cgstvg import synthetic_backbone
    return {'resnet': synthetic_backbone.ensure_pretrained(config)}
  return None


def reference_scores(config: ml_collections.ConfigDict, records) -> dict[str, dict[str, float]]:
  """On the synthetic tube benchmark, its query-blind largest-shape and oracle references."""
  d = config.data
  if d.dataset != 'synthetic_tubes':
    return {}
  from jaxvg.data import synthetic_tubes
  paths = synthetic_tubes.ensure_synthetic_tubes(d.get('synthetic_root', ''),
                                                 d.get('synthetic_size', 'default'))
  return synthetic_tubes.reference_scores(list(records), paths.root)


TASK = registry.Task(
    name='cgstvg',
    build_model=build_model,
    dummy_batch=dummy_batch,
    make_data=make_data,
    postprocess=postprocess,
    load_weights=load_params,
    pretrained_params=pretrained_params,
    frozen_backbone=frozen_swin,
    training=registry.Training(loss_fn=loss_fn, rng_streams=('dropout',),
                               param_labels=param_labels, make_optimizer=make_optimizer,
                               final_stage=final_stage),
    video_predictor=VideoPredictor,
    base_config=base_config,
    reference_scores=reference_scores,
)
