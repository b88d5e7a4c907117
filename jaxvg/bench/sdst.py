"""SDST train-step throughput at QVHighlights shapes beside R²-Tuning's: `python -m jaxvg.bench
--only sdst`.

The engine's jitted train step (forward, backward, AdamW) of configs/sdst/qvhighlights.py's
model (F = 280, M = 10, K = 5, InternVideo2 widths 768 / 1024) at batch 32 × 75 clips, 20 query
tokens (padded to the 32 bucket), fp32 on one device; R²-Tuning's step at the same batch and
clips from `jaxvg.bench.r2tuning`. The Hungarian matching of every step (B·K problems of 10
queries × 32 GT slots, 1–3 real windows) is also timed alone, jitted, to give its share of the
step. FLOPs from XLA's cost analysis (the matcher's while loops count their body once).
"""
from __future__ import annotations

import time
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxvg.bench import r2tuning as r2_bench
from jaxvg.modules.matching import batched_hungarian_match
from jaxvg.projects.sdst import config as sdst_config
from jaxvg.train import step as step_lib
from jaxvg.train import trainer

CLIPS, QUERY_TOKENS, QUERY_BUCKET = 75, 20, 32


def qvh_config(batch_size: int) -> ml_collections.ConfigDict:
  """configs/sdst/qvhighlights.py's model and loss at a benchmark batch size."""
  config = sdst_config.base()
  config.model.dims = 280
  config.train.batch_size = batch_size
  config.mesh.data = 1
  return config


def make_batch(config: ml_collections.ConfigDict, batch_size: int, seed: int = 0
               ) -> dict[str, np.ndarray]:
  """A random batch in the loader's layout and dtypes: pooled video (B,T,K,Dv) and query
  (B,L,K,Dq) in float16, 1–3 windows per sample."""
  m, d = config.model, config.data
  rng = np.random.default_rng(seed)
  query_mask = np.arange(QUERY_BUCKET)[None].repeat(batch_size, 0) < QUERY_TOKENS
  windows = np.zeros((batch_size, d.max_windows, 2), np.float32)
  window_mask = np.zeros((batch_size, d.max_windows), bool)
  for i in range(batch_size):
    for g in range(rng.integers(1, 4)):
      start = rng.integers(0, CLIPS - 10)
      windows[i, g] = (start, start + rng.integers(2, 10))
      window_mask[i, g] = True
  return dict(
      video=rng.standard_normal((batch_size, CLIPS, m.num_layers, m.video_dims),
                                np.float32).astype(np.float16),
      video_mask=np.ones((batch_size, CLIPS), bool),
      query=rng.standard_normal((batch_size, QUERY_BUCKET, m.num_layers, m.query_dims),
                                np.float32).astype(np.float16),
      query_mask=query_mask, windows=windows, window_mask=window_mask,
      saliency=rng.random((batch_size, CLIPS)).astype(np.float32),
      pos_clip=np.full((batch_size,), 15, np.int32), sample_mask=np.ones((batch_size,), bool))


def train_step_case(batch_size: int, repeats: int) -> dict[str, float]:
  config = qvh_config(batch_size)
  run = trainer.build_run(config, jax.devices()[:1])
  state, shardings = trainer.init_train_state(run, 100)
  step = step_lib.jit_train_step(
      step_lib.make_train_step(run.task.training, run.model, config, lambda s: config.optim.lr),
      run.mesh, shardings, None)
  batch = make_batch(config, batch_size)
  start = time.perf_counter()
  compiled = step.lower(state, batch, None).compile()
  compile_s = time.perf_counter() - start
  flops, _ = r2_bench._cost(compiled)
  one_step, holder = r2_bench.stepper(compiled, state, batch)

  jax.block_until_ready(one_step())
  step_s, cpu_s, steal = r2_bench._median_seconds(one_step, repeats)
  params = sum(x.size for x in jax.tree.leaves(holder['state'].params))
  return {'compile_s': compile_s, 'xla_gflop': flops / 1e9, 'step_s': step_s,
          'cpu_s_per_step': cpu_s, 'steal_fraction': steal, 'steps_per_s': 1 / step_s,
          'trainable_params': params}


def matcher_case(batch_size: int, repeats: int) -> dict[str, float]:
  """The matching of one train step alone: B·K cost matrices (M × G slots), jitted."""
  config = qvh_config(batch_size)
  m, k, g = config.model.num_queries, config.model.num_layers, config.data.max_windows
  rng = np.random.default_rng(0)
  cost = rng.standard_normal((batch_size * k, m, g)).astype(np.float32)
  mask = np.arange(g)[None] < rng.integers(1, 4, size=(batch_size * k, 1))
  match = jax.jit(batched_hungarian_match)
  jax.block_until_ready(match(cost, mask))
  seconds, cpu_s, _ = r2_bench._median_seconds(lambda: match(cost, mask), repeats)
  return {'s_per_step': seconds, 'cpu_s_per_step': cpu_s, 'problems': batch_size * k}


def run(repeats: int = 3, ceiling_gflops: float | None = None, batch_size: int = 32) -> dict:
  """SDST and R²-Tuning train steps at batch `batch_size` × 75 clips, the matcher's share."""
  result: dict[str, Any] = {}
  sdst = train_step_case(batch_size, repeats)
  r2 = r2_bench.train_step_case(batch_size, CLIPS, repeats)
  matcher = matcher_case(batch_size, repeats)
  for case in (sdst, r2):
    case['achieved_gflops'] = case['xla_gflop'] / case['step_s']
    if ceiling_gflops:
      case['fraction_of_ceiling'] = case['achieved_gflops'] / ceiling_gflops
  matcher['share_of_sdst_step'] = matcher['s_per_step'] / sdst['step_s']
  result[f'sdst_train_b{batch_size}_t{CLIPS}'] = sdst
  result[f'r2tuning_train_b{batch_size}_t{CLIPS}'] = r2
  result['matcher'] = matcher
  result['sdst_over_r2tuning_step'] = sdst['step_s'] / r2['step_s']
  return result
