"""The 'r2tuning' task: R²-Tuning's model, data, loss, post-processing and weights for the engine."""
from __future__ import annotations


import jax.numpy as jnp
import ml_collections

from jaxvg import registry
from jaxvg.clip.backbone import frozen_clip
from jaxvg.data.temporal import TemporalGroundingData
from jaxvg.projects.r2tuning.convert import load_official
from jaxvg.projects.r2tuning.losses import loss_fn
from jaxvg.projects.r2tuning.model import R2Tuning
from jaxvg.projects.r2tuning.postprocess import postprocess
from jaxvg.projects.r2tuning.predictor import VideoPredictor


def build_model(config: ml_collections.ConfigDict) -> R2Tuning:
  return R2Tuning(config.model)


def dummy_batch(config: ml_collections.ConfigDict, batch_size: int) -> dict[str, jnp.ndarray]:
  """Zeros at the smallest (T, L) buckets, feature widths from config.model; video/query masks
  and sample_mask are all true so a forward pass on it is finite."""
  m, d = config.model, config.data
  t, l, k = min(d.t_buckets), min(d.l_buckets), m.num_layers
  return dict(
      video=jnp.zeros((batch_size, t, k, m.num_tokens, m.video_dims), jnp.float32),
      video_mask=jnp.ones((batch_size, t), bool),
      query=jnp.zeros((batch_size, l, k, m.query_dims), jnp.float32),
      query_mask=jnp.ones((batch_size, l), bool),
      windows=jnp.zeros((batch_size, d.max_windows, 2), jnp.float32),
      window_mask=jnp.zeros((batch_size, d.max_windows), bool),
      saliency=jnp.zeros((batch_size, t), jnp.float32),
      pos_clip=jnp.zeros((batch_size,), jnp.int32),
      sample_mask=jnp.ones((batch_size,), bool))


def make_data(config: ml_collections.ConfigDict, *, train: bool, seed: int,
              process_count: int) -> TemporalGroundingData:
  return TemporalGroundingData.from_config(config, train=train, seed=seed,
                                           process_count=process_count)


TASK = registry.Task(
    name='r2tuning',
    build_model=build_model,
    dummy_batch=dummy_batch,
    make_data=make_data,
    postprocess=postprocess,
    load_weights=load_official,
    frozen_backbone=frozen_clip,
    training=registry.Training(loss_fn=loss_fn, rng_streams=('dropout', 'droppath')),
    video_predictor=VideoPredictor,
)
