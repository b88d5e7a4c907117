"""Registers the 'r2tuning' task: model, loss, post-processing and a dummy batch."""
from __future__ import annotations

import jax.numpy as jnp
import ml_collections

from jaxvg import registry
from jaxvg.losses.r2tuning import loss_fn
from jaxvg.models.r2tuning import R2Tuning
from jaxvg.postprocess.moments import postprocess


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


@registry.register('r2tuning')
def r2tuning_task() -> registry.Task:
  return registry.Task(name='r2tuning', build_model=build_model, loss_fn=loss_fn,
                       postprocess=postprocess, dummy_batch=dummy_batch)
