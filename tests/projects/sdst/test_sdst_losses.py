"""SDST losses against NumPy references written from the formulas (scipy for the matching),
with padded GT windows, a sample without GT and a padding sample."""
import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

from jaxvg.projects.sdst import losses

from .conftest import tiny_config

B, K, M, G, T = 4, 2, 5, 3, 10


def _sig(x):
  return 1 / (1 + np.exp(-x))


def _xx(s):
  return np.stack([s[..., 0] - s[..., 1] / 2, s[..., 0] + s[..., 1] / 2], -1)


def _iou_giou(a, b):
  inter = np.maximum(np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]), 0)
  union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
  hull = np.maximum(a[..., 1], b[..., 1]) - np.minimum(a[..., 0], b[..., 0])
  return inter / union, inter / union - (hull - union) / hull


def _problem(seed=0):
  rng = np.random.default_rng(seed)
  lengths = np.array([10, 7, 8, 10])
  video_mask = np.arange(T)[None] < lengths[:, None]
  windows = np.zeros((B, G, 2), np.float32)
  window_mask = np.zeros((B, G), bool)
  windows[0, :3] = [[1, 3], [4, 8], [8, 10]]
  window_mask[0, :3] = True
  windows[1, :2] = [[0, 2], [3, 6]]
  window_mask[1, :2] = True
  # sample 2 has no GT; sample 3 is padding (its windows must be ignored).
  windows[3, :1], window_mask[3, :1] = [[2, 5]], True
  saliency = np.where(video_mask, rng.uniform(size=(B, T)) * (rng.uniform(size=(B, T)) > 0.6), 0)
  saliency[2] = 0  # no relevant clip: excluded from L_HD
  batch = dict(video_mask=video_mask, windows=windows, window_mask=window_mask,
               saliency=saliency.astype(np.float32), pos_clip=np.array([2, 1, 0, 0]),
               sample_mask=np.array([True, True, True, False]))
  outputs = dict(
      logits=rng.normal(size=(B, K, M)).astype(np.float32),
      spans=np.stack([rng.uniform(0.1, 0.9, (B, K, M)), rng.uniform(0.05, 0.6, (B, K, M))],
                     -1).astype(np.float32),
      actionness=rng.normal(size=(B, K, M)).astype(np.float32),
      saliency_steps=np.where(video_mask[:, None], rng.uniform(-1, 1, (B, K, T)), 0
                              ).astype(np.float32),
      video_emb=rng.normal(size=(B, K, T, 6)).astype(np.float32),
      text_emb=rng.normal(size=(B, K, 6)).astype(np.float32))
  outputs['saliency'] = outputs['saliency_steps'][:, -1]
  return outputs, batch


def _np_moment_losses(out, batch, cfg):
  lengths = batch['video_mask'].sum(-1)
  num_gt = max((batch['window_mask'] & batch['sample_mask'][:, None]).sum(), 1)
  cls = l1 = giou_loss = act = 0.0
  for b in range(B):
    if not batch['sample_mask'][b]:
      continue
    gt = batch['windows'][b][batch['window_mask'][b]] / lengths[b]
    gt = np.stack([gt.mean(1), gt[:, 1] - gt[:, 0]], -1)
    for k in range(K):
      logit, span = out['logits'][b, k].astype(np.float64), out['spans'][b, k].astype(np.float64)
      labels, act_target = np.zeros(M), np.zeros(M)
      if len(gt):
        p = _sig(logit)
        a, g = cfg.focal_alpha, cfg.focal_gamma
        cost_cls = a * (1 - p)**g * -np.log(p + 1e-8) - (1 - a) * p**g * -np.log(1 - p + 1e-8)
        cost = (cfg.match_cls_weight * cost_cls[:, None]
                + cfg.match_l1_weight * np.abs(span[:, None] - gt[None]).sum(-1)
                - cfg.match_giou_weight * _iou_giou(_xx(span)[:, None], _xx(gt)[None])[1])
        rows, cols = linear_sum_assignment(cost)
        labels[rows] = 1
        l1 += np.abs(span[rows] - gt[cols]).sum()
        iou, giou = _iou_giou(_xx(span[rows]), _xx(gt[cols]))
        giou_loss += (1 - giou).sum()
        act_target[rows] = iou
      p = _sig(logit)
      ce = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
      p_t = p * labels + (1 - p) * (1 - labels)
      alpha_t = cfg.focal_alpha * labels + (1 - cfg.focal_alpha) * (1 - labels)
      cls += (alpha_t * ce * (1 - p_t)**cfg.focal_gamma).sum()
      act += np.abs(_sig(out['actionness'][b, k]) - act_target).sum()
  real = batch['sample_mask'].sum()
  return dict(loss_cls=cls / num_gt, loss_l1=l1 / num_gt, loss_giou=giou_loss / num_gt,
              loss_actionness=act / (real * M))


def _np_highlight(sal, batch, temperature):
  scale = min(1 / temperature, 100.0)
  values = []
  for b in range(B):
    pos = (batch['saliency'][b] > 0) & batch['video_mask'][b]
    if not batch['sample_mask'][b] or not pos.any():
      continue
    for k in range(sal.shape[1]):
      s = sal[b, k][batch['video_mask'][b]].astype(np.float64) * scale
      log_p = s - np.log(np.exp(s - s.max()).sum()) - s.max()
      values.append(-log_p[pos[batch['video_mask'][b]]].mean())
  return np.mean(values)


def _np_info_nce(a, b, temperature):
  a = a / np.linalg.norm(a, axis=-1, keepdims=True)
  b = b / np.linalg.norm(b, axis=-1, keepdims=True)
  sim = a @ b.T * min(1 / temperature, 100.0)
  lsm = lambda x, ax: x - np.log(np.exp(x).sum(ax, keepdims=True))  # noqa: E731
  return (-np.diag(lsm(sim, 1)).mean() - np.diag(lsm(sim, 0)).mean()) / 2


def test_moment_losses_match_numpy():
  out, batch = _problem()
  cfg = tiny_config().loss
  got = jax.jit(lambda o, b: losses.moment_losses(o, b, cfg))(out, batch)
  want = _np_moment_losses(out, batch, cfg)
  for name, value in want.items():
    np.testing.assert_allclose(got[name], value, rtol=2e-5, err_msg=name)


def test_binary_actionness_target():
  out, batch = _problem(1)
  cfg = tiny_config().loss
  cfg.actionness_target = 'binary'
  matched, got = jax.jit(lambda o, b: (losses.match(o, b, cfg)[1],
                                       losses.moment_losses(o, b, cfg)['loss_actionness']))(
                                           out, batch)
  valid = batch['sample_mask'][:, None, None]
  err = np.where(valid, np.abs(_sig(out['actionness']) - np.asarray(matched)), 0)
  np.testing.assert_allclose(got, err.sum() / (3 * M), rtol=1e-5)
  # No query of the GT-less or the padding sample is matched; the others match min(M, G).
  np.testing.assert_array_equal(np.asarray(matched).sum(-1), [[3, 3], [2, 2], [0, 0], [0, 0]])


def test_highlight_and_alignment_losses_match_numpy():
  out, batch = _problem(2)
  cfg = tiny_config().loss
  got = losses.highlight_loss(jnp.asarray(out['saliency_steps']), batch, cfg.temperature)
  np.testing.assert_allclose(got, _np_highlight(out['saliency_steps'], batch, cfg.temperature),
                             rtol=1e-5)
  got = losses.alignment_losses(out, batch, cfg.temperature)
  real = np.flatnonzero(batch['sample_mask'])
  pos = out['video_emb'][real, :, batch['pos_clip'][real]]              # (R, K, F)
  text = out['text_emb'][real]
  along_batch = np.mean([_np_info_nce(pos[:, k], text[:, k], cfg.temperature) for k in range(K)])
  along_layers = np.mean([_np_info_nce(pos[i], text[i], cfg.temperature)
                          for i in range(len(real))])
  np.testing.assert_allclose(got['loss_video_align'], along_batch, rtol=1e-5)
  np.testing.assert_allclose(got['loss_layer_align'], along_layers, rtol=1e-5)


def test_total_is_the_weighted_sum():
  out, batch = _problem(3)
  config = tiny_config()
  total, terms = losses.loss_fn(out, batch, config)
  cfg = config.loss
  weights = dict(loss_cls=cfg.cls_weight, loss_l1=cfg.l1_weight, loss_giou=cfg.giou_weight,
                 loss_actionness=cfg.actionness_weight, loss_hd=cfg.hd_weight,
                 loss_video_align=cfg.video_align_weight,
                 loss_layer_align=cfg.layer_align_weight)
  assert set(terms) == set(weights)
  np.testing.assert_allclose(total, sum(weights[k] * terms[k] for k in terms), rtol=1e-6)
  cfg.hd_all_steps = False
  _, last = losses.loss_fn(out, batch, config)
  np.testing.assert_allclose(last['loss_hd'],
                             _np_highlight(out['saliency_steps'][:, -1:], batch, cfg.temperature),
                             rtol=1e-5)
