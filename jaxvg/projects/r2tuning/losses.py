"""R²-Tuning training loss (official BundleLoss): classification, regression, saliency and the
two granularity-calibration terms, each weighted by config.loss."""
from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections

from jaxvg.losses.classification import dynamic_bce_loss, focal_loss
from jaxvg.losses.contrastive import info_nce_loss, sampled_nce_loss
from jaxvg.losses.regression import l1_loss
from jaxvg.projects.r2tuning.assign import assign_targets
from jaxvg.projects.r2tuning.model import make_points


def loss_fn(outputs: Mapping[str, jax.Array], batch: Mapping[str, Any],
            config: ml_collections.ConfigDict) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(outputs of R2Tuning, batch dict, config) -> (total loss, dict of unweighted terms).

  Samples with sample_mask false contribute to no term. Terms: loss_cls, loss_reg (with the
  coord head), loss_sal, loss_video_cal, loss_layer_cal.
  """
  model_cfg, cfg = config.model, config.loss
  video_mask = batch['video_mask'].astype(bool)
  b, t = video_mask.shape
  sample_mask = batch.get('sample_mask')
  sample_mask = jnp.ones((b,), bool) if sample_mask is None else sample_mask.astype(bool)
  point_mask = outputs['point_mask'] & sample_mask[:, None]
  saliency = batch['saliency'].astype(jnp.float32)
  pos_clip = batch['pos_clip'].astype(jnp.int32).reshape(b)
  terms = {}

  if model_cfg.use_coord_head:
    points = jnp.asarray(make_points(t, model_cfg.strides, cfg.regress_ranges))
    cls_target, reg_target = assign_targets(points, batch['windows'].astype(jnp.float32),
                                            batch['window_mask'].astype(bool), cfg.center_radius)
    # Official regression positives ignore point validity; padding-invariant mode drops points
    # that would not exist in the unpadded sample.
    positive = (cls_target > 0) & sample_mask[:, None]
    if not model_cfg.official_padding:
      positive &= point_mask
    terms['loss_reg'] = l1_loss(outputs['reg'], reg_target, positive)
  else:
    cls_target = saliency  # stride-1 only: one point per clip, soft saliency targets.

  if cfg.cls_type == 'focal':
    terms['loss_cls'] = focal_loss(outputs['cls_logits'], cls_target, point_mask, cfg.focal_gamma)
  elif cfg.cls_type == 'dynamic_bce':
    terms['loss_cls'] = dynamic_bce_loss(outputs['cls_logits'], cls_target, point_mask)
  else:
    raise ValueError(f"config.loss.cls_type must be 'focal' or 'dynamic_bce', got {cfg.cls_type!r}")

  terms['loss_sal'] = sampled_nce_loss(outputs['h'], outputs['query_emb'], video_mask, saliency,
                                       pos_clip, sample_mask, cfg.temperature, cfg.sal_direction)

  coll_v = outputs['coll_v'][:, jnp.arange(b), pos_clip]           # (K, B, C)
  coll_q = outputs['coll_q_emb']                                   # (K, B, C)
  k = coll_v.shape[0]
  terms['loss_video_cal'] = info_nce_loss(coll_v, coll_q, jnp.broadcast_to(sample_mask, (k, b)),
                                          cfg.temperature)
  terms['loss_layer_cal'] = info_nce_loss(
      jnp.swapaxes(coll_v, 0, 1), jnp.swapaxes(coll_q, 0, 1),
      jnp.broadcast_to(sample_mask[:, None], (b, k)), cfg.temperature)

  weights = dict(loss_cls=cfg.cls_weight, loss_reg=cfg.reg_weight, loss_sal=cfg.sal_weight,
                 loss_video_cal=cfg.video_cal_weight, loss_layer_cal=cfg.layer_cal_weight)
  total = sum(weights[name] * value for name, value in terms.items())
  return total, terms
