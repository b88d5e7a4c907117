"""The 'sdst' task: SDST's model, loss and post-processing on the temporal-grounding data layer
it shares with R²-Tuning (InternVideo2 `.npz` features, CLIP caches or frames through the frozen
CLIP)."""
from __future__ import annotations

import ml_collections

from jaxvg import registry
from jaxvg.clip.backbone import frozen_clip
from jaxvg.data import temporal
from jaxvg.projects.sdst.config import base
from jaxvg.projects.sdst.losses import loss_fn
from jaxvg.projects.sdst.model import SDST
from jaxvg.projects.sdst.postprocess import postprocess
from jaxvg.projects.sdst.predictor import VideoPredictor


def build_model(config: ml_collections.ConfigDict) -> SDST:
  return SDST(config.model)


TASK = registry.Task(
    name='sdst',
    build_model=build_model,
    dummy_batch=temporal.dummy_batch,
    make_data=temporal.TemporalGroundingData.from_config,
    postprocess=postprocess,
    frozen_backbone=frozen_clip,
    training=registry.Training(loss_fn=loss_fn, rng_streams=('dropout', 'droppath')),
    video_predictor=VideoPredictor,
    base_config=base,
)
