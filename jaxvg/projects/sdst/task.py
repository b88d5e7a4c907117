"""The 'sdst' task: SDST's model, loss and post-processing on the temporal-grounding data layer
it shares with R²-Tuning (InternVideo2 `.npz` features, CLIP caches or frames through the frozen
CLIP)."""
from __future__ import annotations

from typing import Any

import ml_collections
from flax import traverse_util

from jaxvg import registry
from jaxvg.clip.backbone import frozen_clip
from jaxvg.data import temporal
from jaxvg.projects.sdst.config import base
from jaxvg.projects.sdst.losses import loss_fn
from jaxvg.projects.sdst.model import SDST
from jaxvg.projects.sdst.postprocess import postprocess
from jaxvg.projects.sdst.predictor import VideoPredictor


# The sparse stream: the decoder queries, their layer and the heads that read them.
SPARSE_PARAMS = (('query_hidden',), ('query_spans',), ('dn_hidden',), ('step', 'sparse'),
                 ('step', 'class_head'), ('step', 'span_head'), ('step', 'actionness_head'))


def build_model(config: ml_collections.ConfigDict) -> SDST:
  return SDST(config.model)


def param_labels(config: ml_collections.ConfigDict, params: Any) -> Any:
  """'sparse' for the sparse stream's parameters, 'default' for the rest (input maps, pooling,
  the dense stream, the gates): `config.optim.groups.sparse.lr_scale` sets the decoder's lr."""
  del config
  flat = traverse_util.flatten_dict(dict(params))
  label = lambda path: ('sparse' if any(path[:len(prefix)] == prefix  # noqa: E731
                                        for prefix in SPARSE_PARAMS) else 'default')
  return traverse_util.unflatten_dict({path: label(path) for path in flat})


TASK = registry.Task(
    name='sdst',
    build_model=build_model,
    dummy_batch=temporal.dummy_batch,
    make_data=temporal.TemporalGroundingData.from_config,
    postprocess=postprocess,
    frozen_backbone=frozen_clip,
    training=registry.Training(loss_fn=loss_fn, rng_streams=('dropout', 'droppath'),
                               param_labels=param_labels),
    video_predictor=VideoPredictor,
    base_config=base,
)
