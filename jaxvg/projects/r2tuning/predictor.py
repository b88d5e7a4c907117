"""R²-Tuning's video predictor behind `jaxvg.Predictor`: the shared frozen-CLIP video predictor
(`jaxvg.predictor.ClipVideoPredictor`) keeping the outputs R²-Tuning's post-processing reads."""
from __future__ import annotations

from jaxvg.predictor import ClipVideoPredictor


class VideoPredictor(ClipVideoPredictor):
  """A trained R²-Tuning (or a converted official checkpoint) plus its frozen CLIP."""
  output_keys = ('cls_logits', 'reg', 'point_mask', 'saliency', 'video_mask')
