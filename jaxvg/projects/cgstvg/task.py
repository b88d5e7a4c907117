"""The 'cgstvg' task: CG-STVG's model, tube data, loss, post-processing and official weights for
the engine."""
from __future__ import annotations

import ml_collections

from jaxvg import registry
from jaxvg.data.tube_examples import TubeData
from jaxvg.errors import UserError
from jaxvg.projects.cgstvg.convert import load_weights
from jaxvg.projects.cgstvg.losses import loss_fn
from jaxvg.projects.cgstvg.model import CGSTVG, dummy_batch
from jaxvg.projects.cgstvg.optim import make_optimizer, param_labels
from jaxvg.projects.cgstvg.postprocess import postprocess


def build_model(config: ml_collections.ConfigDict) -> CGSTVG:
  return CGSTVG(config)


def make_data(config: ml_collections.ConfigDict, *, train: bool, seed: int,
              process_count: int) -> TubeData:
  data = TubeData.from_config(config, train=train, seed=seed, process_count=process_count)
  vocab = config.model.text.vocab_size
  if data.tokenizer is not None and data.tokenizer.vocab_size > vocab:
    raise UserError(f'data.tokenizer {config.data.tokenizer!r} has {data.tokenizer.vocab_size} '
                    f'tokens; model.text.vocab_size is {vocab}')
  return data


def load_params(path: str, config: ml_collections.ConfigDict):
  return load_weights(path, config)['params']


TASK = registry.Task(
    name='cgstvg',
    build_model=build_model,
    dummy_batch=dummy_batch,
    make_data=make_data,
    postprocess=postprocess,
    load_weights=load_params,
    training=registry.Training(loss_fn=loss_fn, rng_streams=('dropout',),
                               param_labels=param_labels, make_optimizer=make_optimizer),
)
