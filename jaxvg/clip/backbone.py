"""The frozen CLIP as a task's backbone on the frames path (as on a TPU).

On the features path (`data.source == 'features'`) the batch already holds cached CLIP features
and there is no backbone to run. On the frames path the frozen CLIP turns `frames`/`tokens` into
the same `video`/`query` features the cache would hold, inside the jitted step.
"""
from __future__ import annotations

import jax
import ml_collections

from jaxvg.registry import FrozenBackbone


def frozen_clip(config: ml_collections.ConfigDict) -> FrozenBackbone | None:
  """The last `model.num_layers` CLIP layers of frames and tokens, or None on the features path."""
  if config.data.source != 'frames':
    return None
  from jaxvg import clip
  from jaxvg.modules import clip as clip_modules
  if config.clip.path:
    model, params = clip.load(config.clip.path)
  else:
    model, params = clip.init_random(config.clip.arch, seed=config.seed)
  num_layers = config.model.num_layers

  def encode(frozen: dict, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    frames = batch['frames']                                  # (B, T, H, W, 3) uint8
    b, t = frames.shape[:2]
    video = clip_modules.encode_video_layers(
        model, frozen, frames.reshape((b * t,) + frames.shape[2:]), num_layers)  # (B·T, K, P, Dv)
    query = clip_modules.encode_text_layers(model, frozen, batch['tokens'], num_layers)
    out = {k: v for k, v in batch.items() if k not in ('frames', 'tokens')}
    out['video'] = video.reshape((b, t) + video.shape[1:])
    out['query'] = query                                      # (B, 77, K, Dq)
    out['query_mask'] = batch['tokens'] != 0
    return out

  return FrozenBackbone(params=params, encode=encode)
