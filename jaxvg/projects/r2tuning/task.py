"""The 'r2tuning' task: R²-Tuning's model, data, loss, post-processing and weights for the engine."""
from __future__ import annotations

import ml_collections

from jaxvg import registry
from jaxvg.clip.backbone import frozen_clip
from jaxvg.data import temporal
from jaxvg.projects.r2tuning.config import base
from jaxvg.projects.r2tuning.convert import load_official
from jaxvg.projects.r2tuning.losses import loss_fn
from jaxvg.projects.r2tuning.model import R2Tuning
from jaxvg.projects.r2tuning.postprocess import postprocess
from jaxvg.projects.r2tuning.predictor import VideoPredictor


def build_model(config: ml_collections.ConfigDict) -> R2Tuning:
  return R2Tuning(config.model)


TASK = registry.Task(
    name='r2tuning',
    build_model=build_model,
    dummy_batch=temporal.dummy_batch,
    make_data=temporal.TemporalGroundingData.from_config,
    postprocess=postprocess,
    load_weights=load_official,
    frozen_backbone=frozen_clip,
    training=registry.Training(loss_fn=loss_fn, rng_streams=('dropout', 'droppath')),
    video_predictor=VideoPredictor,
    base_config=base,
)
