"""SDST's video predictor behind `jaxvg.Predictor`: the shared frozen-CLIP video predictor
(`jaxvg.predictor.ClipVideoPredictor`) keeping the outputs SDST's post-processing reads.

It grounds through CLIP, so it serves the configs that read CLIP (frames or CLIP caches); jaxvg
has no InternVideo2 to encode a user's video for the configs on the released InternVideo2
features.
"""
from __future__ import annotations

from typing import Any

from jaxvg.errors import UserError
from jaxvg.predictor import ClipVideoPredictor


class VideoPredictor(ClipVideoPredictor):
  """A trained SDST plus the frozen CLIP it read, on one device."""
  output_keys = ('logits', 'actionness', 'spans', 'saliency', 'video_mask')

  def __init__(self, run, params: Any, **options: Any):
    data = run.config.data
    if data.source == 'features' and data.feature_format != 'clip':
      raise UserError(f'{run.config.task}: this config reads {data.feature_format} features; '
                      'predicting on a video needs its encoder, and jaxvg encodes videos with '
                      "CLIP only (train on data.feature_format='clip' or data.source='frames')")
    super().__init__(run, params, **options)
