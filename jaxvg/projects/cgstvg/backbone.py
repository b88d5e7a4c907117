"""CG-STVG's frozen parts: the Video-Swin-T tower as the task's frozen backbone, and the frozen
encoders of a feature cache (ResNet C5 and Swin stage 4; RoBERTa's states when the config
freezes the text tower).

The official model trains ResNet layer2-4 and RoBERTa and freezes only Video-Swin-T
(`pipeline.py`), so on the frames path the tower is the task's `FrozenBackbone`: its parameters
are an argument of the jitted step, never trained or checkpointed, and `encode` adds the stage-4
map as `swin` beside the frames the trained ResNet reads. A tuning method that freezes the whole
model (NST) reads both maps from `python -m jaxvg.prepare features cgstvg` instead
(`jaxvg.data.tube_features`), and there is no backbone to run.

The tower runs deterministically. Official training leaves it in train mode, so its drop path
(0.2) is active although its weights are frozen; a frozen backbone (and a cache) cannot
reproduce a stochastic tower, and evaluation is identical.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import linen as nn

from jaxvg.modules.resnet import ResNet
from jaxvg.modules.roberta import Roberta, RobertaArch
from jaxvg.modules.video_swin import VideoSwin, VideoSwinArch
from jaxvg.projects.cgstvg.model import normalise_frames, resnet_module, roberta_arch
from jaxvg.registry import FrozenBackbone


def swin_arch(config: ml_collections.ConfigDict) -> VideoSwinArch:
  t = config.model.swin_tower
  arch = VideoSwinArch(embed_dim=t.embed_dim, depths=tuple(t.depths), heads=tuple(t.heads),
                       window=tuple(t.window), patch=tuple(t.patch),
                       patch_frames=t.patch_frames)
  if arch.out_dims[-1] != config.model.swin_dims:
    raise ValueError(f'model.swin_tower gives {arch.out_dims[-1]}-d last-stage maps, but '
                     f'model.swin_dims is {config.model.swin_dims}')
  return arch


def swin_stride(arch: VideoSwinArch) -> int:
  """Pixels per cell of the tower's last map: the patch, halved by every later stage."""
  return arch.patch[1] * 2 ** (len(arch.depths) - 1)


def seeded_variables(module: nn.Module, sample: jax.Array, seed: int, *more_inputs: Any) -> Any:
  """Random variables of `module` drawn on the host (a frozen tower's stand-in in tests and
  benchmarks; host draws avoid compiling an initialiser of tens of millions of parameters):
  weights N(0, 1/fan_in), norm scales and variances 1, other vectors 0."""
  shapes = jax.eval_shape(module.init, jax.random.key(0), sample, *more_inputs)
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    if len(leaf.shape) >= 2:
      fan_in = math.prod(leaf.shape[:-1])
      return jnp.asarray(rng.normal(0, fan_in ** -0.5, leaf.shape), leaf.dtype)
    one = path[-1].key in ('scale', 'weight', 'running_var')
    return jnp.full(leaf.shape, 1.0 if one else 0.0, leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def swin_params(config: ml_collections.ConfigDict) -> Any:
  """The tower's variables: `model.swin_weights` (K400 release or CG-STVG checkpoint; 'synthetic':
  the toy tower pretrained on the synthetic renderer's moving shapes), or seeded random ones when
  it is ''."""
  arch = swin_arch(config)
  if config.model.swin_weights == 'synthetic':
    from jaxvg.projects.cgstvg import synthetic_swin
    return synthetic_swin.ensure_pretrained(config)
  if config.model.swin_weights:
    from jaxvg.projects.cgstvg.convert import load_video_swin
    return load_video_swin(config.model.swin_weights, arch)
  return seeded_variables(VideoSwin(arch), jnp.zeros((1, 1, 32, 32, 3)), config.seed)


def swin_stage4(arch: VideoSwinArch, variables: Any, frames: jax.Array,
                frame_mask: jax.Array | None) -> jax.Array:
  """(B, T, H, W, 3) normalised frames -> the (B, T, ceil(H/s), ceil(W/s), C) map of the last
  stage (stage 4 of Video-Swin-T, s = 32; `swin_stride`), each sample's frames run as one clip
  (`frame_mask`: its real frames, a prefix)."""
  return VideoSwin(arch).apply(variables, frames, frame_mask)[-1]


def frozen_swin(config: ml_collections.ConfigDict) -> FrozenBackbone | None:
  """The task's frozen backbone: Video-Swin-T on the frames; None without the Swin branch or
  when the batch comes from a feature cache (it already holds `swin`)."""
  if not config.model.use_swin or config.data.get('features_dir'):
    return None
  arch, data = swin_arch(config), config.data

  def encode(variables: Any, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    frames = batch['frames']
    pixel_mask = batch.get('pixel_mask', jnp.ones((frames.shape[0],) + frames.shape[2:4], bool))
    swin = swin_stage4(arch, variables, normalise_frames(frames, pixel_mask, data),
                       batch['frame_mask'])
    return {**batch, 'swin': swin}

  return FrozenBackbone(params=swin_params(config), encode=encode)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _c5(resnet: ResNet, params: Any, frames: jax.Array,
        data: ml_collections.FrozenConfigDict) -> jax.Array:
  x = normalise_frames(frames[None], jnp.ones((1,) + frames.shape[1:3], bool), data)[0]
  return resnet.apply({'params': params}, x)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _swin_clip(arch: VideoSwinArch, variables: Any, frames: jax.Array,
               data: ml_collections.FrozenConfigDict) -> jax.Array:
  x = normalise_frames(frames[None], jnp.ones((1,) + frames.shape[1:3], bool), data)
  return swin_stage4(arch, variables, x, None)[0]


class FeatureEncoder:
  """One video's frozen features for the cache: frames (T, H, W, 3) uint8 -> {'c5': (T, h, w,
  2048), 'swin': (T, h, w, 768) if the config has the Swin branch, and with `data.test_halves`
  'swin_halves', the tower run on the even and on the odd frames apart}, float32.

  The video is one clip, unpadded (as the official runs one video at a time); ResNet runs on
  `chunk` frames at a time (frames are independent there), the tower on the whole clip (its
  windows span frames). Each new frame size or clip length compiles once per process.
  """

  def __init__(self, config: ml_collections.ConfigDict, resnet_params: Any,
               swin_variables: Any | None, chunk: int = 16):
    self.halves = bool(config.data.get('test_halves', False))
    self.resnet = resnet_module(config.model)
    self.data = ml_collections.FrozenConfigDict(config.data)
    self.arch = swin_arch(config) if config.model.use_swin else None
    self.resnet_params, self.swin_variables, self.chunk = resnet_params, swin_variables, chunk

  def __call__(self, frames: Any) -> dict[str, jax.Array]:
    frames = jnp.asarray(frames, jnp.uint8)
    pad = -len(frames) % self.chunk
    chunks = jnp.pad(frames, [(0, pad), (0, 0), (0, 0), (0, 0)]).reshape(
        (-1, self.chunk) + frames.shape[1:])
    c5 = jnp.concatenate([_c5(self.resnet, self.resnet_params, c, self.data)
                          for c in chunks])
    out = {'c5': c5[:len(frames)]}
    if self.arch is not None:
      out['swin'] = _swin_clip(self.arch, self.swin_variables, frames, self.data)
      if self.halves:           # each half alone and unpadded, as the official test runs it
        halves = np.zeros(out['swin'].shape, np.float32)
        for parity in range(min(2, len(frames))):
          halves[parity::2] = _swin_clip(self.arch, self.swin_variables, frames[parity::2],
                                         self.data)
        out['swin_halves'] = halves
    return out


@functools.partial(jax.jit, static_argnums=0)
def _text_states(arch: RobertaArch, params: Any, ids: jax.Array, mask: jax.Array) -> jax.Array:
  return Roberta(arch).apply({'params': params}, ids, mask, True)


class TextEncoder:
  """Queries' token ids -> the frozen RoBERTa's last hidden states (n_tokens, hidden) float32 per
  query, for the cache. `chunk` queries per call, padded to `length` tokens (one compilation;
  the tower is padding invariant)."""

  def __init__(self, config: ml_collections.ConfigDict, params: Any, chunk: int = 64):
    self.arch, self.params, self.chunk = roberta_arch(config.model), params, chunk
    self.length, self.pad_id = config.data.max_text_len, config.model.text.pad_token_id

  def __call__(self, token_lists: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = []
    for lo in range(0, len(token_lists), self.chunk):
      chunk = token_lists[lo:lo + self.chunk]
      ids = np.full((self.chunk, self.length), self.pad_id, np.int32)
      mask = np.zeros((self.chunk, self.length), bool)
      for i, tokens in enumerate(chunk):
        ids[i, :len(tokens)], mask[i, :len(tokens)] = tokens, True
      states = np.asarray(_text_states(self.arch, self.params, ids, mask))
      out += [states[i, :len(tokens)] for i, tokens in enumerate(chunk)]
    return out
