"""SDST's dense query selection (`model.query_selection='dense'`): per-clip targets, the
selection of the first references, the proposal head's start and its loss against NumPy (the
model's padding invariance with it: test_sdst_model.py)."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxvg.projects.sdst import proposals
from jaxvg.projects.sdst.losses import proposal_losses

from .conftest import collate, tiny_config
from .test_sdst_losses import _iou_giou, _sig, _xx
from .test_sdst_model import _samples


def _np_clip_targets(gt, gt_mask, lengths, t):
  positive, target = np.zeros((len(gt), t), bool), np.zeros((len(gt), t, 2))
  for b in range(len(gt)):
    for clip in range(lengths[b]):
      u = (clip + 0.5) / lengths[b]
      inside = [g for g in range(gt.shape[1]) if gt_mask[b, g]
                and gt[b, g, 0] - gt[b, g, 1] / 2 <= u <= gt[b, g, 0] + gt[b, g, 1] / 2]
      if inside:
        positive[b, clip] = True
        target[b, clip] = gt[b, min(inside, key=lambda g: gt[b, g, 1])]
  return positive, target


def test_clip_targets_take_the_shortest_window_containing_the_clip():
  gt = np.array([[[0.5, 0.6], [0.4, 0.2], [0.9, 0.1]], [[0.3, 0.2], [0.0, 0.0], [0.0, 0.0]]],
                np.float32)
  gt_mask = np.array([[True, True, False], [True, False, False]])
  lengths = np.array([10, 6])
  video_mask = np.arange(12)[None] < lengths[:, None]
  positive, target = proposals.clip_targets(jnp.asarray(gt), jnp.asarray(gt_mask),
                                            jnp.asarray(video_mask))
  want_positive, want_target = _np_clip_targets(gt, gt_mask, lengths, 12)
  np.testing.assert_array_equal(positive, want_positive)
  np.testing.assert_allclose(np.where(want_positive[..., None], target, 0), want_target, atol=1e-7)
  assert want_positive[0, 3] and np.allclose(want_target[0, 3], [0.4, 0.2])   # both contain it


def test_selection_takes_the_best_valid_clips_then_the_learned_spans():
  logits = jnp.asarray([[0.1, 3.0, -1.0, 2.0, 9.0], [5.0, 4.0, 0.0, 0.0, 0.0]])
  spans = jnp.asarray(np.random.default_rng(0).uniform(0.1, 0.5, (2, 5, 2)), jnp.float32)
  video_mask = jnp.asarray([[True, True, True, True, False], [True, True, False, False, False]])
  learned = jnp.full((2, 6, 2), 0.75)
  refs = proposals.select(logits, spans, video_mask, learned)
  np.testing.assert_array_equal(refs[0, :4], spans[0, jnp.array([1, 3, 0, 2])])
  np.testing.assert_array_equal(refs[0, 4:], 0.75)              # one padded clip, six queries
  np.testing.assert_array_equal(refs[1, :2], spans[1, :2])
  np.testing.assert_array_equal(refs[1, 2:], 0.75)              # only two valid clips
  grad = jax.grad(lambda s: proposals.select(logits, s, video_mask, learned).sum())(spans)
  np.testing.assert_array_equal(grad, 0.0)                      # references are detached


def test_the_head_starts_with_a_short_span_around_each_clip():
  dense = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 16)), jnp.float32)
  lengths = jnp.asarray([8, 5])
  head = proposals.ProposalHead(16, -2.0)
  logits, spans = head.apply(head.init(jax.random.key(0), dense, lengths), dense, lengths)
  centres = (np.arange(8) + 0.5)[None] / np.array([8, 5])[:, None]
  inside = centres - proposals.INITIAL_REACH >= 0
  inside &= centres + proposals.INITIAL_REACH <= 1
  np.testing.assert_allclose(np.where(inside, spans[..., 0], centres), centres, atol=1e-6)
  np.testing.assert_allclose(np.where(inside, spans[..., 1], 0.1), 0.1, atol=1e-6)
  assert logits.shape == (2, 8)


def test_proposal_losses_match_numpy():
  config = tiny_config()
  cfg = config.loss
  rng = np.random.default_rng(2)
  samples = _samples(config)
  batch = collate(samples + [None], 16, 8, 3)
  b, k, t = 3, 2, 16
  outputs = dict(proposal_logits=rng.normal(size=(b, k, t)).astype(np.float32),
                 proposal_spans=np.stack([rng.uniform(0.1, 0.9, (b, k, t)),
                                          rng.uniform(0.05, 0.6, (b, k, t))], -1
                                         ).astype(np.float32))
  terms = proposal_losses(outputs, batch, cfg)
  lengths = batch['video_mask'].sum(-1)
  gt = batch['windows'] / np.maximum(lengths, 1)[:, None, None]
  gt = np.stack([gt.mean(-1), gt[..., 1] - gt[..., 0]], -1)
  gt_mask = batch['window_mask'] & batch['sample_mask'][:, None]
  positive, target = _np_clip_targets(gt, gt_mask, lengths * batch['sample_mask'], t)
  cls = l1 = giou_loss = 0.0
  for i in range(b):
    for step in range(k):
      for clip in range(lengths[i] if batch['sample_mask'][i] else 0):
        label = float(positive[i, clip])
        p = _sig(outputs['proposal_logits'][i, step, clip].astype(np.float64))
        ce = -(label * np.log(p) + (1 - label) * np.log(1 - p))
        p_t = p * label + (1 - p) * (1 - label)
        alpha_t = cfg.focal_alpha * label + (1 - cfg.focal_alpha) * (1 - label)
        cls += alpha_t * ce * (1 - p_t)**cfg.focal_gamma
        if label:
          span = outputs['proposal_spans'][i, step, clip].astype(np.float64)
          l1 += np.abs(span - target[i, clip]).sum()
          giou_loss += 1 - _iou_giou(_xx(span), _xx(target[i, clip]))[1]
  num = positive.sum()
  np.testing.assert_allclose(terms['loss_proposal_cls'], cls / num, rtol=1e-5)
  np.testing.assert_allclose(terms['loss_proposal_l1'], l1 / num, rtol=1e-5)
  np.testing.assert_allclose(terms['loss_proposal_giou'], giou_loss / num, rtol=1e-5)

