"""[assumed, not CG-STVG's] The tube span fit after training (`model.tube_span.fit_steps`).

Within a run's few hundred steps the tube span head (`model.TubeSpan`) learns from a tube that
is still changing and stays near a fixed span; fit afresh on the finished model's tube it finds
the spans its boxes show (docs/cgstvg.md). So the recipe ends with a stage
(`registry.FinalStage`): the finished model runs in eval mode, with the evaluated weights, over
the train split, keeping what the head reads, and a fresh head is fit on that for `fit_steps`
steps; the engine writes it into the trained and the evaluated weights before the last
checkpoint. `benchmarks/cgstvg_span_probe.py` runs the same pieces on a finished run.
"""
from __future__ import annotations

import functools
from typing import Any, Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.experimental import multihost_utils

from jaxvg import registry
from jaxvg.data import pipeline
from jaxvg.projects.cgstvg.losses import loss_weights, tube_span_terms
from jaxvg.projects.cgstvg.model import TubeSpan
from jaxvg.train import mesh as mesh_lib
from jaxvg.train import step as step_lib

SPAN_INPUTS = ('hidden', 'boxes', 'query', 'frame_mask')


def span_inputs(run: Any, params: Any, split: str) -> dict[str, np.ndarray]:
  """What `TubeSpan` reads (SPAN_INPUTS), its span logits ('tube_sted') and the targets
  ('in_span') of every real sample of `split`, in loader order, the model in eval mode (the
  engine's eval step, in the config's dtype); the same arrays on every host."""
  config = run.config

  @jax.jit
  def forward(params, batch, frozen):
    if run.frozen is not None:
      batch = run.frozen.encode(frozen, batch)
    captured = {}

    def capture(next_fun, args, kwargs, context):
      if isinstance(context.module, TubeSpan) and context.method_name == '__call__':
        captured.update(zip(SPAN_INPUTS, args))
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(capture):
      outputs = step_lib.apply_model(run.model, params, batch, train=False,
                                     dtype=step_lib.compute_dtype(config))
    return {**captured, 'tube_sted': outputs['tube_sted'], 'in_span': batch['in_span'],
            'sample_mask': batch['sample_mask']}

  rows: dict[str, list[np.ndarray]] = {}
  for batch, _ in pipeline.make_loader(config, split, train=False):
    out = forward(params, mesh_lib.to_global(batch, run.mesh), run.frozen_params)
    out = multihost_utils.process_allgather(out, tiled=True)
    real = np.asarray(out.pop('sample_mask'), bool)
    for key, value in out.items():
      value = np.asarray(value)
      rows.setdefault(key, []).append((value if value.dtype == bool else
                                       value.astype(np.float32))[real])
  return {k: np.concatenate(v) for k, v in rows.items()}


def fit(config: ml_collections.ConfigDict, inputs: dict[str, np.ndarray], steps: int,
        seed: int) -> Iterator[tuple[int, Any]]:
  """A fresh `TubeSpan` trained on `inputs` (from `span_inputs`) by the run's span terms and
  weights: AdamW at `tube_span.fit_lr` with the config's weight decay, batches of
  `tube_span.fit_batch_size` drawn without replacement; yields (step, its variables) after every
  step, valid until the next one (the step donates them on accelerators)."""
  s = config.model.tube_span
  weights = loss_weights(config)
  head = TubeSpan(config)
  batch_of = lambda idx: tuple(jnp.asarray(inputs[k][idx]) for k in SPAN_INPUTS)
  variables = head.init(jax.random.key(seed), *batch_of(np.arange(1)))
  tx = optax.adamw(s.fit_lr, weight_decay=config.optim.weight_decay)
  opt_state = tx.init(variables)

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(variables, opt_state, hidden, boxes, query, frame_mask, in_span):
    def objective(trained):
      sted, actioness = head.apply(trained, hidden, boxes, query, frame_mask)
      terms = tube_span_terms(sted, actioness, {'frame_mask': frame_mask, 'in_span': in_span},
                              config)
      return sum(weights[name] * term for name, term in terms.items())
    grads = jax.grad(objective)(variables)
    updates, opt_state = tx.update(grads, opt_state, variables)
    return optax.apply_updates(variables, updates), opt_state

  rng = np.random.default_rng(seed)
  count = len(inputs['boxes'])
  for i in range(1, steps + 1):
    idx = rng.choice(count, min(s.fit_batch_size, count), replace=False)
    variables, opt_state = step(variables, opt_state, *batch_of(idx),
                                jnp.asarray(inputs['in_span'][idx]))
    yield i, variables


def fit_after_training(run: Any, params: Any) -> dict[str, Any]:
  """The stage: {'tube_span': the fitted head's parameters}, the same on every host."""
  config = run.config
  inputs = span_inputs(run, params, config.data.train_split)
  variables = None
  for _, variables in fit(config, inputs, config.model.tube_span.fit_steps, config.seed):
    pass
  head = jax.device_get(variables['params'])
  if jax.process_count() > 1:               # one host's fit, bit for bit on every host
    head = multihost_utils.broadcast_one_to_all(head)
  return {'tube_span': head}


def final_stage(config: ml_collections.ConfigDict) -> registry.FinalStage | None:
  s = config.model.tube_span
  if not (s.enabled and s.fit_steps > 0):
    return None
  return registry.FinalStage('tube span fit', fit_after_training)
