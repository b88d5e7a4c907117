"""R²-Tuning train-step and inference throughput at QVHighlights shapes: `python -m jaxvg.bench
--only r2tuning`.

Train step (forward, backward, AdamW; the engine's own `make_train_step`/`jit_train_step`) at
batch 8 × 75 clips, at exactly T = 75 (QVHighlights' own bucket) and at the base config's
bucket for 75 clips (96: the cost of padding), and at batch 32; K = 4 layers × 50 tokens × 768
video, 20 query tokens × 512 (padded to the 32 bucket), fp32 compute, one CPU device. Features
arrive in float16, as the loader delivers the cached CLIP features (`jaxvg.data.features`); the
model computes in fp32 from them. Inference: latency of one query and throughput of 64 queries
on one video. Compile time of the rolled `nn.scan` against the unrolled recurrence. FLOPs come
from XLA's cost analysis of the unrolled step (a rolled loop's body is counted once, not K
times).
"""
from __future__ import annotations

import json
import resource
import statistics
import time
from typing import Any, Callable, TextIO

import jax
import ml_collections
import numpy as np

from jaxvg.bench import SERVE_PREFIX, host
from jaxvg.data import temporal
from jaxvg.projects.r2tuning import config as r2_config
from jaxvg.train import step as step_lib
from jaxvg.train import trainer

# Official PyTorch R²-Tuning train step (forward, backward, AdamW), batch 8 × 75 clips, 2 cores,
# on another machine of this kind (../shared/README.md). Machines of a kind differ: pass the step
# timed on this one (`benchmarks/torch_reference_step.py`) as `official_step_s` where torch is.
OFFICIAL_STEP_S = 6.47
CLIPS, QUERY_TOKENS = 75, 20


def qvh_config(batch_size: int = 8, precision: str = 'fp32',
               scan_unroll: int = 0) -> ml_collections.ConfigDict:
  """configs/r2tuning/qvhighlights.py's model and loss at a benchmark batch size."""
  config = r2_config.base()
  config.model.dropout = 0.5
  config.model.scan_unroll = scan_unroll
  config.train.batch_size = batch_size
  config.train.precision = precision
  config.mesh.data = 1
  return config


def make_batch(config: ml_collections.ConfigDict, batch_size: int, num_clips: int,
               valid_clips: int = CLIPS, query_len: int = 32,
               valid_tokens: int = QUERY_TOKENS, seed: int = 0) -> dict[str, np.ndarray]:
  """A random batch in the loader's layout and dtypes: video (B,T,K,P,Dv) and query (B,L,K,Dq)
  float16 like the cached features, one window."""
  m, d = config.model, config.data
  rng = np.random.default_rng(seed)
  video_mask = np.arange(num_clips)[None].repeat(batch_size, 0) < valid_clips
  query_mask = np.arange(query_len)[None].repeat(batch_size, 0) < valid_tokens
  windows = np.zeros((batch_size, d.max_windows, 2), np.float32)
  windows[:, 0] = (10.0, 30.0)
  window_mask = np.zeros((batch_size, d.max_windows), bool)
  window_mask[:, 0] = True
  return dict(
      video=rng.standard_normal((batch_size, num_clips, m.num_layers, m.num_tokens,
                                 m.video_dims), np.float32).astype(np.float16),
      video_mask=video_mask,
      query=rng.standard_normal((batch_size, query_len, m.num_layers, m.query_dims),
                                np.float32).astype(np.float16),
      query_mask=query_mask, windows=windows, window_mask=window_mask,
      saliency=(rng.random((batch_size, num_clips)) * video_mask).astype(np.float32),
      pos_clip=np.full((batch_size,), 15, np.int32), sample_mask=np.ones((batch_size,), bool))


def _cost(compiled) -> tuple[float, float]:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get('flops', 0.0)), float(cost.get('bytes accessed', 0.0))


def _median_seconds(call: Callable[[], Any], repeats: int) -> tuple[float, float, float]:
  """Medians of wall seconds, process-CPU seconds and the host's steal fraction over `repeats`
  calls. CPU seconds are the load-robust figure on a shared machine; the steal fraction says how
  much of the machine other guests took meanwhile."""
  samples = [host.timed(lambda: jax.block_until_ready(call()))[1] for _ in range(repeats)]
  return tuple(statistics.median(getattr(s, field) for s in samples)
               for field in ('wall_s', 'cpu_s', 'steal_fraction'))


def _maxrss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _train_step(config) -> tuple[trainer.Run, Any, Any]:
  """(run, initial train state, the engine's jitted train step) on one device."""
  run = trainer.build_run(config, jax.devices()[:1])
  state, shardings = trainer.init_train_state(run, 100)
  step = step_lib.jit_train_step(
      step_lib.make_train_step(run.task.training, run.model, config, lambda s: config.optim.lr),
      run.mesh, shardings, None)
  return run, state, step


def stepper(compiled: Callable[..., Any], state: Any, batch: Any
            ) -> tuple[Callable[[], Any], dict[str, Any]]:
  """(a call that runs one compiled train step, carrying the state on, and returns its metrics;
  the holder whose 'state' is the latest train state)."""
  holder = {'state': state}

  def one_step():
    holder['state'], metrics = compiled(holder['state'], batch, None)
    return metrics

  return one_step, holder


def compiled_train_step(batch_size: int, num_clips: int, precision: str = 'fp32',
                        scan_unroll: int = 0) -> tuple[Callable[[], Any], dict[str, float]]:
  """The engine's jitted train step on a benchmark batch, compiled: (a call that runs one step,
  carrying the state on, and returns its metrics; {compile_s, xla_gflop, xla_gbytes})."""
  config = qvh_config(batch_size, precision, scan_unroll)
  run, state, step = _train_step(config)
  batch = make_batch(config, batch_size, num_clips)
  start = time.perf_counter()
  compiled = step.lower(state, batch, None).compile()
  compile_s = time.perf_counter() - start
  flops, bytes_accessed = _cost(compiled)
  one_step, _ = stepper(compiled, state, batch)
  return one_step, {'compile_s': compile_s, 'xla_gflop': flops / 1e9,
                    'xla_gbytes': bytes_accessed / 1e9}


def train_step_case(batch_size: int, num_clips: int, repeats: int = 3, precision: str = 'fp32',
                    scan_unroll: int = 0) -> dict[str, float]:
  """Compile time, median step time and XLA's FLOP/byte counts of one jitted train step."""
  one_step, result = compiled_train_step(batch_size, num_clips, precision, scan_unroll)
  one_step()  # warm-up
  step_s, cpu_s, steal = _median_seconds(one_step, repeats)
  memory = jax.devices()[0].memory_stats() or {}
  return {**result, 'step_s': step_s, 'steps_per_s': 1 / step_s, 'cpu_s_per_step': cpu_s,
          'steal_fraction': steal,
          'peak_bytes_in_use_mb': memory.get('peak_bytes_in_use', float('nan')) / 2**20,
          'maxrss_mb': _maxrss_mb()}


def serve_train_steps(requests: TextIO, replies: TextIO) -> None:
  """Runs the headline train step (batch 8 × 75 clips, fp32) once per line read from
  `requests`, replying one `SERVE_PREFIX` + JSON line each ({step_s, cpu_s, steal_fraction}; the first reply,
  {compile_s, xla_gflop, ...}, after compilation and a warm-up step), until EOF or 'quit'.

  Lets another process alternate its own steps with this one (`benchmarks/
  torch_reference_step.py --alternate`): the host's drift then moves both alike, and the two
  runtimes never share a process (in one process their thread pools slow each other ≈ 2×).
  """
  def reply(record: dict) -> None:
    replies.write(SERVE_PREFIX + json.dumps(record) + '\n')
    replies.flush()

  one_step, info = compiled_train_step(8, CLIPS)
  jax.block_until_ready(one_step())  # warm-up
  reply(info)
  for line in requests:
    if line.strip() == 'quit':
      break
    sample = host.timed(lambda: jax.block_until_ready(one_step()))[1]
    reply({'step_s': sample.wall_s, 'cpu_s': sample.cpu_s, 'steal_fraction': sample.steal_fraction})


def inference_case(batch_size: int, num_clips: int, repeats: int = 5) -> dict[str, float]:
  """The eval step (deterministic forward) on `batch_size` queries of ONE video."""
  config = qvh_config(batch_size)
  run = trainer.build_run(config, jax.devices()[:1])
  step = run.eval_step
  batch = make_batch(config, batch_size, num_clips)
  batch['video'] = np.broadcast_to(batch['video'][:1], batch['video'].shape).copy()
  params = trainer.init_params(run)
  compiled = step.lower(params, batch, None).compile()
  compiled(params, batch, None)
  seconds, _, _ = _median_seconds(lambda: compiled(params, batch, None), repeats)
  return {'s_per_call': seconds, 'queries_per_s': batch_size / seconds,
          'ms_per_query': 1000 * seconds / batch_size}


def scan_compile_case(num_clips: int = CLIPS) -> dict[str, float]:
  """Train-step compile seconds with the rolled scan and the fully unrolled recurrence (K=4)."""
  out = {}
  for name, unroll in (('rolled', 1), ('unrolled', 0)):
    config = qvh_config(8, scan_unroll=unroll)
    _, state, step = _train_step(config)
    batch = make_batch(config, 8, num_clips)
    start = time.perf_counter()
    lowered = step.lower(state, batch, None)
    out[f'{name}_lower_s'] = time.perf_counter() - start
    start = time.perf_counter()
    lowered.compile()
    out[f'{name}_compile_s'] = time.perf_counter() - start
    out[f'{name}_hlo_kchars'] = len(lowered.as_text()) / 1e3
  return out


def run(repeats: int = 3, ceiling_gflops: float | None = None, quick: bool = False,
        official_step_s: float | None = None) -> dict:
  """All R²-Tuning cases; GFLOP/s fractions against `ceiling_gflops` (measured in the same run),
  speed-ups against the official step of `official_step_s` at batch 8 (timed on this machine;
  None: the shared figure, `OFFICIAL_STEP_S`).

  `quick` measures only the headline case (batch 8 × 75, fp32).
  """
  t_bucket = temporal.pick_bucket(CLIPS, r2_config.base().data.t_buckets)
  timed_here = official_step_s is not None
  official_step_s = official_step_s if timed_here else OFFICIAL_STEP_S
  result: dict[str, Any] = {'official_step_s': official_step_s,
                            'official_step_timed_here': timed_here}
  # The unrolled step is what XLA's cost analysis counts fully; it is also the faster one to run.
  cases = [('train_b8_t75', 8, CLIPS, 'fp32', 0)]
  if not quick:
    cases += [('train_b8_t75_rolled', 8, CLIPS, 'fp32', 1),
              (f'train_b8_t{t_bucket}', 8, t_bucket, 'fp32', 0),
              ('train_b32_t75', 32, CLIPS, 'fp32', 0),
              ('train_b8_t75_bf16', 8, CLIPS, 'bf16', 0)]
  for name, batch_size, num_clips, precision, unroll in cases:
    case = train_step_case(batch_size, num_clips, repeats, precision, unroll)
    case['speedup_vs_official'] = official_step_s * batch_size / 8 / case['step_s']
    if unroll == 1:  # XLA counts a rolled loop's body once: use the unrolled count of the shape.
      case['xla_gflop'] = result['train_b8_t75']['xla_gflop']
    case['achieved_gflops'] = case['xla_gflop'] / case['step_s']
    if ceiling_gflops:
      case['fraction_of_ceiling'] = case['achieved_gflops'] / ceiling_gflops
    result[name] = case
  if not quick:
    result['infer_1_query'] = inference_case(1, CLIPS)
    result['infer_64_queries_1_video'] = inference_case(64, CLIPS)
    result['scan_compile'] = scan_compile_case()
  return result
