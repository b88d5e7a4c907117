"""The zero-shot STVG task: a predict-only system with its own runner (no train step)."""
from __future__ import annotations

import json
import os

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from jaxvg import registry
from jaxvg.errors import UserError
from jaxvg.projects.zeroshot import convert, runner, sharding
from jaxvg.projects.zeroshot.llava import Llava, LlavaConfig


def _llava_config(config: ml_collections.ConfigDict):
  path = os.path.join(config.model.folder, 'config.json')
  if not os.path.exists(path):
    raise UserError(f'config.model.folder: no config.json at {path}')
  with open(path) as f:
    overrides = {k: v for k, v in config.model.overrides.items() if v is not None}
    return convert.config_from_hf(json.load(f), **overrides)


class LlavaOnBatch(nn.Module):
  """The engine's view of the backend: `apply(variables, batch, train=False)` -> {'logits'}.

  The batch holds one video's frames (F, S, S, 3) and prompts (B, L) whose visual block starts at
  position 0; the runner drives `Llava` directly (pipeline.Grounder)."""
  config: LlavaConfig

  @nn.compact
  def __call__(self, batch: dict, train: bool = False) -> dict:
    del train
    ids = batch['ids']
    last = jnp.full((ids.shape[0], 1), ids.shape[1] - 1)
    return Llava(self.config, name='llava')(batch['pixels'], ids, 0, last)


def build_model(config: ml_collections.ConfigDict) -> LlavaOnBatch:
  return LlavaOnBatch(_llava_config(config))


def dummy_batch(config: ml_collections.ConfigDict, batch_size: int) -> dict:
  """One frame and prompts holding just its visual block and one text token."""
  c = _llava_config(config)
  size = c.vision.image_size
  return {'pixels': jnp.zeros((1, size, size, 3)),
          'ids': jnp.zeros((batch_size, c.num_visual_tokens(1) + 1), jnp.int32)}


def make_data(config, *, train: bool, seed: int, process_count: int):
  raise UserError('the zero-shot system reads its data in its own runner (--mode predict)')


def postprocess(outputs, metadata, config) -> list[dict]:
  raise UserError('the zero-shot system writes its rows in its own runner (--mode predict)')


def load_weights(path: str, config: ml_collections.ConfigDict):
  """Params of `build_model(config)` from a Hugging Face folder."""
  overrides = {k: v for k, v in config.model.overrides.items() if v is not None}
  return {'llava': convert.load_weights(path, jnp.dtype(config.model.dtype), **overrides)[1]}


TASK = registry.Task(
    name='zeroshot',
    build_model=build_model,
    dummy_batch=dummy_batch,
    make_data=make_data,
    postprocess=postprocess,
    load_weights=load_weights,
    sharding_rules=lambda config: sharding.rules(fsdp=False),
    runner=runner.run,
)
