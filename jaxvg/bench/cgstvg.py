"""CG-STVG throughput: `python -m jaxvg.bench --only cgstvg [--quick]`.

Two cases, each with XLA's FLOP count of the compiled call and the achieved GFLOP/s against the
run's matmul ceiling:
  backbone  the frozen feature encoders of one clip (`backbone.FeatureEncoder`'s jitted calls):
            ResNet-101 C5 of every frame and the Video-Swin-T stage-4 map of the clip, with
            seeded random weights; frames/s of both together.
  train     the engine's jitted train step (forward, backward, the official optimiser groups)
            of the trainable part reading cached C5 / Swin maps (`data.features_dir`), with text
            through RoBERTa as in official training.
Full size is HC-STVG's (64 frames at 420 x 588, a 14 x 19 grid, configs/cgstvg/hcstvg_v1.py,
one video per step as per GPU officially). The reduced size, for CPUs (`--quick`, and the default
on a CPU backend), keeps the real backbones at 8 frames of 128 x 192 and trains the synthetic
config with the Swin branch on 2 videos x 16 frames of a 4 x 6 grid.
"""
from __future__ import annotations

import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvg import configs
from jaxvg.bench import r2tuning as r2_bench
from jaxvg.modules.video_swin import VideoSwin
from jaxvg.projects.cgstvg import backbone
from jaxvg.projects.cgstvg.config import base_config
from jaxvg.projects.cgstvg.model import resnet_module

# (frames, height, width) of the backbone clip; (batch, frames, grid h, grid w, text) of training.
FULL = {'clip': (64, 420, 588), 'train': (1, 64, 14, 19, 32)}
REDUCED = {'clip': (8, 128, 192), 'train': (2, 16, 4, 6, 16)}
SYNTHETIC = pathlib.Path(__file__).resolve().parents[2] / 'configs' / 'cgstvg' / 'synthetic.py'


def _compiled(fn, *args) -> tuple[Any, float, float]:
  """(compiled call, compile seconds, XLA GFLOP) of the jitted `fn` on `args`."""
  start = time.perf_counter()
  compiled = fn.lower(*args).compile()
  return compiled, time.perf_counter() - start, r2_bench._cost(compiled)[0] / 1e9


def backbone_case(clip: tuple[int, int, int], repeats: int) -> dict[str, float]:
  """ResNet-101 C5 and Video-Swin-T stage 4 of one clip (uint8 frames in, fp32 maps out)."""
  config = base_config()             # HC-STVG v1's
  frames, height, width = clip
  video = jnp.asarray(np.random.default_rng(0).integers(0, 256, clip + (3,), np.uint8))
  resnet_net = resnet_module(config.model)
  resnet = backbone.seeded_variables(resnet_net, jnp.zeros((1, 32, 32, 3)), 0)['params']
  arch = backbone.swin_arch(config)
  swin = backbone.seeded_variables(VideoSwin(arch), jnp.zeros((1, 1, 32, 32, 3)), 0)
  data = ml_collections.FrozenConfigDict(config.data)
  c5_call, c5_compile_s, c5_gflop = _compiled(backbone._c5, resnet_net, resnet, video, data)
  swin_call, swin_compile_s, swin_gflop = _compiled(backbone._swin_clip, arch, swin, video, data)
  out = {'frames': frames, 'height': height, 'width': width,
         'compile_s': c5_compile_s + swin_compile_s}
  total_s = 0.0
  for name, call, args, gflop in (('resnet101_c5', c5_call, (resnet, video), c5_gflop),
                                  ('swin_t_stage4', swin_call, (swin, video), swin_gflop)):
    jax.block_until_ready(call(*args))
    seconds, cpu_s, steal = r2_bench._median_seconds(lambda: call(*args), repeats)
    total_s += seconds
    out[name] = {'s_per_clip': seconds, 'cpu_s_per_clip': cpu_s, 'steal_fraction': steal,
                 'xla_gflop': gflop, 'frames_per_s': frames / seconds,
                 'achieved_gflops': gflop / seconds}
  out['frames_per_s'] = frames / total_s
  out['xla_gflop'] = c5_gflop + swin_gflop
  out['achieved_gflops'] = out['xla_gflop'] / total_s
  return out


def train_config(reduced: bool) -> ml_collections.ConfigDict:
  config = configs.load(str(SYNTHETIC)) if reduced else base_config()
  config.model.use_swin = True
  config.data.features_dir = 'cached'      # the step reads c5 / swin; no frozen backbone runs
  config.mesh.data = 1
  return config


def cached_batch(config: ml_collections.ConfigDict, shape: tuple[int, ...], seed: int = 0
                 ) -> dict[str, np.ndarray]:
  """A batch as `jaxvg.data.tube_features.CachedTubeData` gives it: float16 maps, a span of
  half the frames with boxes, random token ids."""
  b, t, h, w, text = shape
  rng = np.random.default_rng(seed)
  in_span = np.zeros((b, t), bool)
  in_span[:, t // 4:t // 4 + t // 2] = True
  boxes = np.concatenate([rng.uniform(0.3, 0.7, (b, t, 2)), rng.uniform(0.1, 0.4, (b, t, 2))],
                         -1).astype(np.float32)
  return {
      'c5': rng.standard_normal((b, t, h, w, 2048), np.float32).astype(np.float16),
      'swin': rng.standard_normal((b, t, h, w, config.model.swin_dims),
                                  np.float32).astype(np.float16),
      'grid_mask': np.ones((b, h, w), bool), 'frame_mask': np.ones((b, t), bool),
      'tokens': rng.integers(3, config.model.text.vocab_size, (b, text)).astype(np.int32),
      'text_mask': np.ones((b, text), bool), 'boxes': boxes, 'box_mask': in_span.copy(),
      'in_span': in_span, 'span': np.tile([t // 4, t // 4 + t // 2 - 1], (b, 1)).astype(np.int32),
      'sample_mask': np.ones((b,), bool)}


def train_step_case(reduced: bool, shape: tuple[int, ...], repeats: int) -> dict[str, float]:
  config = train_config(reduced)
  config.train.batch_size = shape[0]
  _, state, step = r2_bench._train_step(config)
  batch = cached_batch(config, shape)
  compiled, compile_s, gflop = _compiled(step, state, batch, None)
  one_step, _ = r2_bench.stepper(compiled, state, batch)

  jax.block_until_ready(one_step())
  step_s, cpu_s, steal = r2_bench._median_seconds(one_step, repeats)
  return {'batch': shape[0], 'frames': shape[1], 'grid': f'{shape[2]}x{shape[3]}',
          'compile_s': compile_s, 'xla_gflop': gflop, 'step_s': step_s, 'cpu_s_per_step': cpu_s,
          'steal_fraction': steal, 'steps_per_s': 1 / step_s,
          'achieved_gflops': gflop / step_s}


def run(repeats: int = 3, ceiling_gflops: float | None = None, reduced: bool | None = None
        ) -> dict:
  """Both cases at full size, or reduced (default: on a CPU backend)."""
  reduced = jax.default_backend() == 'cpu' if reduced is None else reduced
  sizes = REDUCED if reduced else FULL
  result: dict[str, Any] = {'size': 'reduced' if reduced else 'full',
                            'backbone': backbone_case(sizes['clip'], repeats),
                            'train_from_cache': train_step_case(reduced, sizes['train'], repeats)}
  if ceiling_gflops:
    for case in ('backbone', 'train_from_cache'):
      result[case]['fraction_of_ceiling'] = result[case]['achieved_gflops'] / ceiling_gflops
  return result
