"""SDST training loss: L = L_MR + L_HD + L_align (research report §4), weights in config.loss.

L_MR is DETR's set loss at every refinement step (deep supervision): each step's M predictions
are matched to the ground-truth windows by the exact Hungarian algorithm inside the jitted step
(`jaxvg.modules.matching`), then sigmoid focal classification, L1 and GIoU on the matched spans,
and an L1 actionness term. L_HD is an InfoNCE of clip saliencies against the relevant clips;
L_align is R²-Tuning's InfoNCE between each layer's positive clip and the pooled text, along the
batch and along the layers. Spans are (centre, width) normalised by each sample's true length.
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections

from jaxvg.losses.classification import bce_with_logits
from jaxvg.losses.contrastive import info_nce_loss, logit_scale
from jaxvg.losses.spans import cxw_to_xx, pairwise_iou_and_giou, temporal_iou_and_giou, xx_to_cxw
from jaxvg.modules.attention import MASK_VALUE
from jaxvg.modules.matching import batched_hungarian_match
from jaxvg.projects.sdst.proposals import clip_targets


def sigmoid_focal(logits: jax.Array, targets: jax.Array, alpha: float, gamma: float) -> jax.Array:
  """Elementwise sigmoid focal loss with α-balancing (Deformable DETR); α < 0 turns α off."""
  p = jax.nn.sigmoid(logits)
  p_t = p * targets + (1 - p) * (1 - targets)
  loss = bce_with_logits(logits, targets) * (1 - p_t) ** gamma
  if alpha >= 0:
    loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
  return loss


def normalized_windows(batch: Mapping[str, Any]) -> jax.Array:
  """GT windows (B, G, 2) in clip units -> (centre, width) in [0, 1] of each true length."""
  lengths = jnp.maximum(batch['video_mask'].sum(-1), 1).astype(jnp.float32)
  return xx_to_cxw(batch['windows'].astype(jnp.float32) / lengths[:, None, None])


def matching_cost(logits: jax.Array, spans: jax.Array, gt_spans: jax.Array,
                  cfg: ml_collections.ConfigDict) -> jax.Array:
  """(…, M) logits, (…, M, 2) spans, (…, G, 2) GT spans (cxw) -> cost (…, M, G).

  w_cls·(focal cost of the positive class) + w_l1·|Δ(c, w)|₁ − w_giou·GIoU (Deformable DETR).
  """
  p = jax.nn.sigmoid(logits)
  a, g = cfg.focal_alpha, cfg.focal_gamma
  neg = (1 - a) * p**g * -jnp.log(1 - p + 1e-8)
  pos = a * (1 - p)**g * -jnp.log(p + 1e-8)
  l1 = jnp.abs(spans[..., :, None, :] - gt_spans[..., None, :, :]).sum(-1)
  _, giou = pairwise_iou_and_giou(cxw_to_xx(spans), cxw_to_xx(gt_spans))
  return (cfg.match_cls_weight * (pos - neg)[..., None] + cfg.match_l1_weight * l1
          - cfg.match_giou_weight * giou)


def match(outputs: Mapping[str, jax.Array], batch: Mapping[str, Any],
          cfg: ml_collections.ConfigDict) -> tuple[jax.Array, jax.Array]:
  """Hungarian matching at every step: (gt_index, matched), (B, K, M) each. Padding samples and
  padded GT windows take no part."""
  logits, spans = outputs['logits'], outputs['spans']
  b, k, m = logits.shape
  gt_spans = normalized_windows(batch)
  gt_mask = batch['window_mask'].astype(bool) & _sample_mask(batch, b)[:, None]
  cost = matching_cost(logits, spans, gt_spans[:, None], cfg)                # (B, K, M, G)
  g = cost.shape[-1]
  gt_index, matched = batched_hungarian_match(
      cost.reshape(b * k, m, g), jnp.repeat(gt_mask, k, axis=0))
  return gt_index.reshape(b, k, m), matched.reshape(b, k, m)


def moment_losses(outputs: Mapping[str, jax.Array], batch: Mapping[str, Any],
                  cfg: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  """Focal, L1, GIoU and actionness terms summed over steps; each step normalised by the number
  of real GT windows in the batch (Deformable DETR's num_boxes, at least 1)."""
  logits, spans, actionness = outputs['logits'], outputs['spans'], outputs['actionness']
  b, k, m = logits.shape
  sample_mask = _sample_mask(batch, b)
  gt_index, matched = match(outputs, batch, cfg)
  gt_spans = normalized_windows(batch)
  target = jnp.take_along_axis(gt_spans[:, None], gt_index[..., None], axis=2)  # (B, K, M, 2)
  num_gt = jnp.maximum((batch['window_mask'].astype(bool) & sample_mask[:, None]).sum(), 1.0)
  valid = jnp.broadcast_to(sample_mask[:, None, None], (b, k, m))
  labels = matched.astype(jnp.float32)

  focal = sigmoid_focal(logits, labels, cfg.focal_alpha, cfg.focal_gamma)
  loss_cls = jnp.where(valid, focal, 0.0).sum() / num_gt
  l1 = jnp.abs(spans - target).sum(-1)
  loss_l1 = jnp.where(matched, l1, 0.0).sum() / num_gt
  iou, giou = temporal_iou_and_giou(cxw_to_xx(spans), cxw_to_xx(target))
  loss_giou = jnp.where(matched, 1 - giou, 0.0).sum() / num_gt

  if cfg.actionness_target == 'iou':
    act_target = jnp.where(matched, jax.lax.stop_gradient(iou), 0.0)
  elif cfg.actionness_target == 'binary':
    act_target = labels
  else:
    raise ValueError(f"config.loss.actionness_target must be 'iou' or 'binary', got "
                     f'{cfg.actionness_target!r}')
  act = jnp.abs(jax.nn.sigmoid(actionness) - act_target)
  # Mean over each step's valid queries, summed over steps like the other terms.
  loss_act = jnp.where(valid, act, 0.0).sum() / jnp.maximum(sample_mask.sum() * m, 1.0)
  return dict(loss_cls=loss_cls, loss_l1=loss_l1, loss_giou=loss_giou, loss_actionness=loss_act)


def denoising_losses(outputs: Mapping[str, jax.Array], batch: Mapping[str, Any],
                     cfg: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  """The denoising queries' terms (`jaxvg.projects.sdst.denoising`; no matching: each query's GT
  is the window it was noised from): focal classification (positives 1, negatives 0), L1 and
  GIoU on the positives, actionness; summed over steps, each step normalised by the number of
  positive queries of real windows (DN-DETR), actionness by the number of real queries."""
  logits, spans, actionness = outputs['dn_logits'], outputs['dn_spans'], outputs['dn_actionness']
  index, positive = outputs['dn_index'], outputs['dn_positive']
  b = logits.shape[0]
  real = (jnp.asarray(batch['window_mask'], bool) & _sample_mask(batch, b)[:, None])[:, index]
  real = real[:, None]                                                      # (B, 1, N)
  positive = real & positive
  target = normalized_windows(batch)[:, None, index]                        # (B, 1, N, 2)
  (cls, l1, giou), iou = _assigned_span_terms(logits, spans, target, positive, real, cfg)
  act_target = (jnp.where(positive, jax.lax.stop_gradient(iou), 0.0)
                if cfg.actionness_target == 'iou' else positive.astype(jnp.float32))
  act = jnp.abs(jax.nn.sigmoid(actionness) - act_target)
  return dict(loss_dn_cls=cls, loss_dn_l1=l1, loss_dn_giou=giou,
              loss_dn_actionness=jnp.where(real, act, 0.0).sum() / jnp.maximum(real.sum(), 1.0))


def proposal_losses(outputs: Mapping[str, jax.Array], batch: Mapping[str, Any],
                    cfg: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  """The per-clip proposal head's terms (`jaxvg.projects.sdst.proposals`): focal classification
  of every valid clip (positive: its centre inside a GT window), L1 and GIoU of the positives'
  spans against their window; summed over steps, each normalised by the positive clips."""
  logits, spans = outputs['proposal_logits'], outputs['proposal_spans']      # (B,K,T), (B,K,T,2)
  b = logits.shape[0]
  sample_mask = _sample_mask(batch, b)
  video_mask = jnp.asarray(batch['video_mask'], bool) & sample_mask[:, None]
  gt_mask = jnp.asarray(batch['window_mask'], bool) & sample_mask[:, None]
  positive, target = clip_targets(normalized_windows(batch), gt_mask, video_mask)
  (cls, l1, giou), _ = _assigned_span_terms(logits, spans, target[:, None], positive[:, None],
                                             video_mask[:, None], cfg)
  return dict(loss_proposal_cls=cls, loss_proposal_l1=l1, loss_proposal_giou=giou)


def _assigned_span_terms(logits: jax.Array, spans: jax.Array, target: jax.Array,
                         positive: jax.Array, valid: jax.Array, cfg: ml_collections.ConfigDict
                         ) -> tuple[tuple[jax.Array, jax.Array, jax.Array], jax.Array]:
  """Terms of predictions whose GT is fixed (no matching): focal over `valid` (`positive` ones
  labelled 1), L1 and 1 − GIoU over `positive`, each summed and divided by the positives; and
  the IoU of every span with its target. Masks broadcast against logits (B, K, N)."""
  num = jnp.maximum(positive.sum(), 1.0)
  labels = jnp.broadcast_to(positive, logits.shape).astype(jnp.float32)
  focal = sigmoid_focal(logits, labels, cfg.focal_alpha, cfg.focal_gamma)
  iou, giou = temporal_iou_and_giou(cxw_to_xx(spans), cxw_to_xx(target))
  terms = (jnp.where(valid, focal, 0.0).sum() / num,
           jnp.where(positive, jnp.abs(spans - target).sum(-1), 0.0).sum() / num,
           jnp.where(positive, 1 - giou, 0.0).sum() / num)
  return terms, iou


def highlight_loss(saliency: jax.Array, batch: Mapping[str, Any], temperature: float
                   ) -> jax.Array:
  """InfoNCE of cosine saliencies (B, S, T) over clips: every relevant clip (target saliency > 0)
  against all valid clips of its video, −log softmax_t(s/τ) averaged over the positives of a
  sample, then over the samples that have any (and over the S steps given)."""
  b = saliency.shape[0]
  video_mask = batch['video_mask'].astype(bool)[:, None]
  positive = (batch['saliency'] > 0)[:, None] & video_mask
  logits = jnp.where(video_mask, saliency * logit_scale(temperature), MASK_VALUE)
  log_prob = jax.nn.log_softmax(logits, axis=-1)
  count = positive.sum(-1)
  per_sample = -jnp.where(positive, log_prob, 0.0).sum(-1) / jnp.maximum(count, 1)
  use = jnp.broadcast_to((count > 0) & _sample_mask(batch, b)[:, None], per_sample.shape)
  return jnp.where(use, per_sample, 0.0).sum() / jnp.maximum(use.sum(), 1)


def alignment_losses(outputs: Mapping[str, jax.Array], batch: Mapping[str, Any],
                     temperature: float) -> dict[str, jax.Array]:
  """R²-Tuning's calibration pair on SDST's per-layer embeddings: InfoNCE between the positive
  clip of each layer (video_emb at pos_clip) and the pooled text, along the batch (each layer)
  and along the layers (each sample)."""
  video_emb, text_emb = outputs['video_emb'], outputs['text_emb']       # (B,K,T,F), (B,K,F)
  b, k = text_emb.shape[:2]
  pos_clip = batch['pos_clip'].astype(jnp.int32).reshape(b)
  pos = video_emb[jnp.arange(b), :, pos_clip]                             # (B, K, F)
  sample_mask = _sample_mask(batch, b)
  # Padding samples are excluded by the masks; a constant stand-in keeps the normalisation's
  # gradient finite (their pooled text is exactly zero).
  keep = sample_mask[:, None, None]
  pos, text_emb = jnp.where(keep, pos, 1.0), jnp.where(keep, text_emb, 1.0)
  along_batch = info_nce_loss(jnp.swapaxes(pos, 0, 1), jnp.swapaxes(text_emb, 0, 1),
                              jnp.broadcast_to(sample_mask, (k, b)), temperature)
  along_layers = info_nce_loss(pos, text_emb, jnp.broadcast_to(sample_mask[:, None], (b, k)),
                               temperature)
  return dict(loss_video_align=along_batch, loss_layer_align=along_layers)


def loss_fn(outputs: Mapping[str, jax.Array], batch: Mapping[str, Any],
            config: ml_collections.ConfigDict) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(SDST outputs, batch, config) -> (total loss, dict of unweighted terms)."""
  cfg = config.loss
  terms = moment_losses(outputs, batch, cfg)
  if 'dn_logits' in outputs:
    terms.update(denoising_losses(outputs, batch, cfg))
  if 'proposal_logits' in outputs:
    terms.update(proposal_losses(outputs, batch, cfg))
  saliency = outputs['saliency_steps'] if cfg.hd_all_steps else outputs['saliency'][:, None]
  terms['loss_hd'] = highlight_loss(saliency, batch, cfg.temperature)
  terms.update(alignment_losses(outputs, batch, cfg.temperature))
  weights = dict(loss_cls=cfg.cls_weight, loss_l1=cfg.l1_weight, loss_giou=cfg.giou_weight,
                 loss_actionness=cfg.actionness_weight, loss_hd=cfg.hd_weight,
                 loss_video_align=cfg.video_align_weight,
                 loss_layer_align=cfg.layer_align_weight)
  for name in ('cls', 'l1', 'giou', 'actionness'):     # the matched terms' weights, scaled
    weights[f'loss_dn_{name}'] = cfg.dn_weight * weights[f'loss_{name}']
  for name in ('cls', 'l1', 'giou'):
    weights[f'loss_proposal_{name}'] = cfg.proposal_weight * weights[f'loss_{name}']
  total = sum(weights[name] * value for name, value in terms.items())
  return total, terms


def _sample_mask(batch: Mapping[str, Any], b: int) -> jax.Array:
  mask = batch.get('sample_mask')
  return jnp.ones((b,), bool) if mask is None else mask.astype(bool)
