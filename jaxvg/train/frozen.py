"""Frozen backbones that run inside the jitted step (the frames path, as on a TPU).

On the features path (`data.source == 'features'`) the batch already holds cached CLIP features
and there is nothing to run. On the frames path the frozen CLIP turns `frames`/`tokens` into
the same `video`/`query` features the cache would hold, inside the step, under stop_gradient.
"""
from __future__ import annotations

from typing import Any

import jax
import ml_collections
from jax.sharding import Mesh

from jaxvg.train import mesh as mesh_lib
from jaxvg.train.step import Encoder


def build(config: ml_collections.ConfigDict, mesh: Mesh) -> tuple[Encoder | None, Any]:
  """(encoder, frozen params laid out on the mesh), or (None, None) on the features path."""
  if config.data.source != 'frames':
    return None, None
  from jaxvg import clip  # the CLIP towers are only needed on this path
  from jaxvg.modules import clip as clip_modules
  if config.clip.path:
    model, params = clip.load(config.clip.path)
  else:
    model, params = clip.init_random(config.clip.arch, seed=config.seed)
  num_layers = config.model.num_layers

  def encode(frozen: Any, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    frames = batch['frames']                                  # (B, T, H, W, 3) uint8
    b, t = frames.shape[:2]
    video = clip_modules.encode_video_layers(model, frozen, frames.reshape((b * t,) + frames.shape[2:]),
                                     num_layers)              # (B·T, K, P, Dv)
    query = clip_modules.encode_text_layers(model, frozen, batch['tokens'], num_layers)  # (B, 77, K, Dq)
    out = {k: v for k, v in batch.items() if k not in ('frames', 'tokens')}
    out['video'] = video.reshape((b, t) + video.shape[1:])
    out['query'] = query
    out['query_mask'] = batch['tokens'] != 0
    return out

  params = jax.device_put(params, shardings(params, mesh))
  return encode, params


def shardings(frozen: Any, mesh: Mesh) -> Any:
  """Frozen parameters follow the same (regex -> spec) rules as trainable ones."""
  if frozen is None:
    return None
  return mesh_lib.param_shardings(mesh, frozen)
