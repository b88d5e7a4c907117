"""The official CG-STVG criterion (`models/criterion.py` VideoSTGLoss), batched.

Per decoder layer (the last one plain, the others as `_i` auxiliary terms, same weights):
  loss_bbox       Σ |box − gt| over GT frames / number of GT boxes
  loss_giou       Σ (1 − GIoU) over GT frames / number of GT boxes
  loss_sted       KL(softmax(start/end logits) ‖ Gaussian(σ) at the GT start/end frame)
  loss_actioness  BCE-with-logits on actioness, weight `eos` outside the GT span
  loss_conf       BCE-with-logits of the confidence (a SUM of two sigmoids, as the official
                  feeds it) against the IoU of the box with the GT, over GT frames; the
                  official lets this loss's gradient reach the boxes through the IoU target
                  (`loss.conf_target_gradient`, on to match)
The official trains one video per GPU; per-video means (sted, actioness, conf) are therefore
averaged over the videos of the batch, and the box sums are divided by the batch's box count
(DDP's gradient average of per-GPU sums over the mean box count is exactly that).
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections

from jaxvg.losses.boxes import cxcywh_to_xyxy, paired_giou, paired_iou

EPS = 1e-6


def _video_mean(values: jax.Array, mask: jax.Array, has_gt: jax.Array) -> jax.Array:
  """(B, T) -> each video's mean over its `mask`ed frames, averaged over the videos `has_gt`."""
  per_video = (values * mask).sum(-1) / jnp.maximum(mask.sum(-1), 1)
  return jnp.where(has_gt, per_video, 0).sum() / jnp.maximum(has_gt.sum(), 1)


def _gaussian_target(index: jax.Array, length: int, sigma: float) -> jax.Array:
  """(B,) frame index -> (B, T) Gaussian (σ frames) around it, +eps, L1-normalised."""
  t = jnp.arange(length, dtype=jnp.float32)
  target = jnp.exp(-jnp.square(t[None] - index[:, None]) / (2 * sigma**2)) + EPS
  return target / target.sum(-1, keepdims=True)


def _kl_to_target(logits: jax.Array, target: jax.Array, frame_mask: jax.Array) -> jax.Array:
  logits = jnp.where(frame_mask, logits, -1e32)
  prob = jax.nn.softmax(logits, axis=-1)
  return prob * jnp.log((prob + EPS) / target)


def layer_losses(boxes: jax.Array, conf: jax.Array, sted: jax.Array, actioness: jax.Array,
                 batch: Mapping[str, Any], config: ml_collections.ConfigDict
                 ) -> dict[str, jax.Array]:
  """The five terms for one decoder layer: boxes (B, T, 4), conf (B, T), sted (B, T, 2),
  actioness (B, T) against batch boxes (B, T, 4), in_span (the GT span: the official
  "actioness"), box_mask and frame_mask (B, T)."""
  frame_mask = batch['frame_mask']
  span_mask = batch['in_span'] & frame_mask
  gt_mask = span_mask & batch['box_mask']
  num_boxes = jnp.maximum(gt_mask.sum(), 1)

  pred_xyxy, gt_xyxy = cxcywh_to_xyxy(boxes), cxcywh_to_xyxy(batch['boxes'])
  l1 = jnp.abs(boxes - batch['boxes']).sum(-1)
  giou = paired_giou(pred_xyxy, gt_xyxy)
  iou, _ = paired_iou(pred_xyxy, gt_xyxy)

  sted_kl, actioness_bce = span_terms(sted, actioness, batch, config)
  if not config.loss.conf_target_gradient:
    iou = jax.lax.stop_gradient(iou)
  conf_bce = _bce_with_logits(conf, iou)

  return {'loss_bbox': jnp.where(gt_mask, l1, 0).sum() / num_boxes,
          'loss_giou': jnp.where(gt_mask, 1 - giou, 0).sum() / num_boxes,
          'loss_sted': sted_kl,
          'loss_actioness': actioness_bce,
          'loss_conf': _video_mean(conf_bce, gt_mask, span_mask.any(-1))}


def span_terms(sted: jax.Array, actioness: jax.Array, batch: Mapping[str, Any],
               config: ml_collections.ConfigDict) -> tuple[jax.Array, jax.Array]:
  """The span's two terms, each averaged over the videos that have a GT span: the KL of the
  start/end logits (B, T, 2) to Gaussians at the GT edges, and the actioness (B, T) BCE."""
  frame_mask = batch['frame_mask']
  span_mask = batch['in_span'] & frame_mask
  has_gt = span_mask.any(-1)
  t = frame_mask.shape[1]
  frames = jnp.arange(t)
  start = jnp.where(span_mask, frames, t).min(-1)
  end = jnp.where(span_mask, frames, -1).max(-1)
  sted_kl = (_kl_to_target(sted[..., 0], _gaussian_target(start, t, config.loss.sigma), frame_mask)
             + _kl_to_target(sted[..., 1], _gaussian_target(end, t, config.loss.sigma), frame_mask))
  in_span = (frames >= start[:, None]) & (frames <= end[:, None])
  weight = jnp.where(in_span, 1.0, config.loss.eos)
  actioness_bce = weight * _bce_with_logits(actioness, span_mask.astype(actioness.dtype))
  return (_video_mean(sted_kl, frame_mask, has_gt),
          _video_mean(actioness_bce, frame_mask, has_gt))


def tube_span_terms(sted: jax.Array, actioness: jax.Array, batch: Mapping[str, Any],
                    config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  """`model.tube_span`'s terms: the actioness BCE, and the KL of its start/end logits where the
  head has its own (`span_from='logits'`; summed from the actioness, they have no target of
  their own)."""
  sted_kl, actioness_bce = span_terms(sted, actioness, batch, config)
  terms = {'loss_tube_actioness': actioness_bce}
  if config.model.tube_span.span_from == 'logits':
    terms['loss_tube_sted'] = sted_kl
  return terms


def _bce_with_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
  return jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def loss_weights(config: ml_collections.ConfigDict) -> dict[str, float]:
  w = config.loss
  return {'loss_bbox': w.bbox, 'loss_giou': w.giou, 'loss_sted': w.sted,
          'loss_actioness': w.actioness, 'loss_conf': w.conf,
          'loss_tube_sted': w.sted * w.tube_span,
          'loss_tube_actioness': w.actioness * w.tube_span}


def loss_fn(outputs: Mapping[str, jax.Array], batch: Mapping[str, Any],
            config: ml_collections.ConfigDict) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(weighted total, every term): the last decoder layer's terms plus, with `loss.aux`, the
  same terms of every earlier layer suffixed `_i`; with `model.tube_span`, its span's terms
  (`loss_tube_actioness`, and `loss_tube_sted` where the head has start/end logits of its own)."""
  layers = outputs['boxes'].shape[0]
  weights = loss_weights(config)
  terms = {}
  for i in range(layers):
    if i < layers - 1 and not config.loss.aux:
      continue
    suffix = '' if i == layers - 1 else f'_{i}'
    layer = layer_losses(outputs['boxes'][i], outputs['conf'][i], outputs['sted'][i],
                         outputs['actioness'][i], batch, config)
    terms.update({k + suffix: v for k, v in layer.items()})
  if 'tube_sted' in outputs:
    terms.update(tube_span_terms(outputs['tube_sted'], outputs['tube_actioness'], batch,
                                 config))
  total = sum(weights[k.rsplit('_', 1)[0] if k[-1].isdigit() else k] * v
              for k, v in terms.items())
  return total, terms
