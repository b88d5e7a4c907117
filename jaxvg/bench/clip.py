"""Throughput of the frozen ViT-B/32 image tower (random weights) on this machine.

`python -m jaxvg.bench.clip` prints frames/s at batch 64 in float32 and bfloat16, the FLOPs per
frame from XLA's cost analysis, and the achieved GFLOP/s against the CPU's matmul ceiling
measured in the same run (`jaxvg.bench.ceiling`).
"""
from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxvg.clip
from jaxvg.modules.clip import encode_video_layers

ARCH = 'ViT-B/32'
BATCH = 64
NUM_LAYERS = 4


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost['flops'])


def matmul_gflops(iterations: int = 10) -> float:
  """fp32 GFLOP/s of the tower's largest matmul shape (64*50, 768) x (768, 3072), measured now.

  The tower's own GEMM rate, beside the 4096³ ceiling.
  """
  a, b = jnp.ones((BATCH * 50, 768)), jnp.ones((768, 3072))
  fn = jax.jit(jnp.matmul)
  fn(a, b).block_until_ready()
  start = time.perf_counter()
  for _ in range(iterations):
    out = fn(a, b)
  out.block_until_ready()
  return 2 * a.shape[0] * a.shape[1] * b.shape[1] * iterations / (time.perf_counter() - start) / 1e9


def run(iterations: int = 3, ceiling_gflops: float | None = None) -> dict:
  """Frames/s and GFLOP/s of `encode_video_layers` (last 4 layers, all 50 tokens) at batch 64;
  fractions against `ceiling_gflops` (measured now when not given)."""
  if ceiling_gflops is None:
    from jaxvg.bench import ceiling
    ceiling_gflops = ceiling.run()['matmul_gflops']
  _, params = jaxvg.clip.init_random(ARCH, seed=0)
  params = jax.device_put(params)
  frames = jax.device_put(np.random.default_rng(0).integers(0, 256, (BATCH, 224, 224, 3),
                                                            dtype=np.uint8))
  result: dict = {'arch': ARCH, 'batch': BATCH, 'num_layers': NUM_LAYERS,
                  'devices': jax.device_count(), 'matmul_ceiling_gflops': ceiling_gflops,
                  'matmul_gflops_measured': matmul_gflops()}
  for name, dtype in (('fp32', jnp.float32), ('bf16', jnp.bfloat16)):
    model = jaxvg.clip.CLIP(jaxvg.clip.CLIP_ARCHS[ARCH], dtype)
    fn = jax.jit(lambda p, f, model=model: encode_video_layers(model, p, f, NUM_LAYERS))
    start = time.perf_counter()
    compiled = fn.lower(params, frames).compile()
    compile_s = time.perf_counter() - start
    compiled(params, frames).block_until_ready()  # warm-up
    start = time.perf_counter()
    for _ in range(iterations):
      out = compiled(params, frames)
    out.block_until_ready()
    step_s = (time.perf_counter() - start) / iterations
    flops = _flops(compiled)
    result[name] = {
        'frames_per_s': BATCH / step_s, 'step_s': step_s, 'compile_s': compile_s,
        'gflop_per_frame': flops / BATCH / 1e9, 'achieved_gflops': flops / step_s / 1e9,
        'fraction_of_ceiling': flops / step_s / 1e9 / ceiling_gflops,
    }
  return result


if __name__ == '__main__':
  print(json.dumps(run(), indent=1))
