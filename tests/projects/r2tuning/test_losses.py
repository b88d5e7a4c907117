"""R²-Tuning losses against straightforward NumPy loop references (official formulas)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.projects.r2tuning import config as r2_config
from jaxvg.losses.classification import dynamic_bce_loss, focal_loss
from jaxvg.losses.contrastive import info_nce_loss, sampled_nce_loss
from jaxvg.projects.r2tuning.losses import loss_fn
from jaxvg.losses.regression import l1_loss
from jaxvg.projects.r2tuning.assign import assign_targets
from jaxvg.projects.r2tuning.model import make_points

SCALE = 1 / 0.07


def run_loss(out, batch, config):
  """loss_fn under jit (one compile beats op-by-op dispatch of the whole loss)."""
  return jax.jit(lambda o, b: loss_fn(o, b, config))(jax.tree.map(jnp.asarray, out),
                                                      jax.tree.map(jnp.asarray, batch))


def ref_targets(points, windows, window_mask, radius):
  b, n = windows.shape[0], len(points)
  cls, reg = np.zeros((b, n)), np.zeros((b, n, 2))
  for i in range(b):
    for j, (p, lo, hi, s) in enumerate(points):
      best, best_len, lens = None, math.inf, []
      for (gs, ge), valid in zip(windows[i], window_mask[i]):
        c = (gs + ge) / 2
        ok = (valid and max(c - radius * s, gs) <= p <= min(c + radius * s, ge)
              and lo <= max(p - gs, ge - p) <= hi)
        lens.append(ge - gs if ok else math.inf)
        if ok and ge - gs < best_len:
          best, best_len = (gs, ge), ge - gs
      if best is not None:
        cls[i, j] = 1
        reg[i, j] = ((p - best[0]) / s, (best[1] - p) / s)
  return cls, reg


def test_target_assignment_matches_loop_reference():
  points = make_points(24, (1, 2, 4, 8))
  windows = np.array([[[2.0, 10.0], [4.0, 6.5], [5.0, 7.5], [0, 0]],      # overlapping windows
                      [[3.0, 3.5], [20.0, 24.0], [0, 0], [99.0, -5.0]],    # GT shorter than a clip
                      [[0.0, 24.0], [0, 0], [0, 0], [0, 0]]], np.float32)
  mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]], bool)
  windows[1, 3] = np.inf  # padded GT holding garbage (the official pads with inf)
  cls, reg = assign_targets(jnp.asarray(points), jnp.asarray(windows), jnp.asarray(mask), 1.5)
  ref_cls, ref_reg = ref_targets(points, np.where(mask[..., None], windows, 0), mask, 1.5)
  np.testing.assert_array_equal(cls, ref_cls)
  pos = ref_cls > 0
  np.testing.assert_allclose(np.asarray(reg)[pos], ref_reg[pos], atol=1e-6)
  assert pos[0].sum() > 0 and pos[1].sum() > 0 and pos[2].sum() > 0


def test_target_ties_within_1e3_are_positive_and_shortest_wins():
  points = np.array([[4.0, 0.0, np.inf, 1.0]], np.float32)
  windows = jnp.array([[[3.0, 5.0], [3.5, 5.5004], [2.0, 8.0]]])
  cls, reg = assign_targets(jnp.asarray(points), windows, jnp.ones((1, 3), bool), 1.5)
  assert float(cls[0, 0]) == 1.0
  np.testing.assert_allclose(reg[0, 0], [1.0, 1.0])   # the (3, 5) window: length 2 < 2.0004


def test_focal_and_dynamic_bce_match_reference():
  rng = np.random.default_rng(0)
  z, y = rng.normal(size=(3, 7)) * 3, (rng.uniform(size=(3, 7)) > 0.6).astype(float)
  m = rng.uniform(size=(3, 7)) > 0.3
  p = 1 / (1 + np.exp(-z))
  bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
  p_t = p * y + (1 - p) * (1 - y)
  np.testing.assert_allclose(focal_loss(jnp.asarray(z), jnp.asarray(y), jnp.asarray(m)),
                             (bce * (1 - p_t) ** 2 * m).sum() / m.sum(), rtol=1e-5)
  soft = rng.uniform(size=(3, 7))
  bce_soft = -(soft * np.log(p) + (1 - soft) * np.log(1 - p))
  np.testing.assert_allclose(dynamic_bce_loss(jnp.asarray(z), jnp.asarray(soft), jnp.asarray(m)),
                             (bce_soft * m).sum() / m.sum(), rtol=1e-5)
  assert float(focal_loss(jnp.asarray(z), jnp.asarray(y), jnp.zeros((3, 7), bool))) == 0.0


def test_l1_matches_reference_and_guards_no_positive():
  rng = np.random.default_rng(1)
  pred, tgt = rng.uniform(size=(2, 5, 2)), rng.uniform(size=(2, 5, 2))
  pos = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 1, 0]], bool)
  ref = sum(abs(pred[i, j] - tgt[i, j]).sum() for i in range(2) for j in range(5) if pos[i, j])
  np.testing.assert_allclose(l1_loss(jnp.asarray(pred), jnp.asarray(tgt), jnp.asarray(pos)),
                             ref / (2 * pos.sum()), rtol=1e-6)
  none = jnp.zeros((2, 5), bool)
  assert float(l1_loss(jnp.asarray(pred), jnp.asarray(tgt), none)) == 0.0
  grad = jax.grad(lambda p: l1_loss(p, jnp.asarray(tgt), none))(jnp.asarray(pred))
  assert bool(jnp.isfinite(grad).all()) and float(jnp.abs(grad).max()) == 0.0


def cos(a, b):
  return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def log_softmax(x):
  x = np.asarray(x, np.float64)
  return x - x.max() - np.log(np.exp(x - x.max()).sum())


def ref_sampled_nce(h, q, vmask, sal, pos, smask, direction):
  b, t = sal.shape
  real = [i for i in range(b) if smask[i]]
  sim = np.full((b, t), -np.inf)
  for i in real:
    for j in range(t):
      if vmask[i, j] and sal[i, j] <= sal[i, pos[i]]:
        sim[i, j] = cos(h[i, j], q[i]) * SCALE
  loss = -np.mean([log_softmax(sim[i])[pos[i]] for i in real])
  if direction == 'both':
    loss -= np.mean([log_softmax([sim[k, pos[i]] for k in real])[real.index(i)] for i in real])
  return loss


@pytest.mark.parametrize('direction', ['both', 'row'])
def test_sampled_nce_matches_reference_with_padded_samples(direction):
  rng = np.random.default_rng(2)
  b, t, c = 4, 6, 5
  h, q = rng.normal(size=(b, t, c)), rng.normal(size=(b, c))
  vmask = np.arange(t)[None] < np.array([6, 4, 5, 2])[:, None]
  sal = np.round(rng.uniform(size=(b, t)), 1) * vmask
  pos = np.array([2, 1, 0, 0])
  smask = np.array([1, 1, 0, 1], bool)
  h[2] = 1e6  # a padded sample with garbage features must not matter
  got = sampled_nce_loss(jnp.asarray(h), jnp.asarray(q), jnp.asarray(vmask), jnp.asarray(sal),
                         jnp.asarray(pos), jnp.asarray(smask), 0.07, direction)
  np.testing.assert_allclose(got, ref_sampled_nce(h, q, vmask, sal, pos, smask, direction),
                             rtol=1e-5)


def ref_info_nce(a, b, valid):
  """a, b: (M, N, C); valid (M, N); mean symmetric CE over all valid rows."""
  rows_a, rows_b = [], []
  for m in range(a.shape[0]):
    idx = [n for n in range(a.shape[1]) if valid[m, n]]
    an = a[m, idx] / np.linalg.norm(a[m, idx], axis=-1, keepdims=True)
    bn = b[m, idx] / np.linalg.norm(b[m, idx], axis=-1, keepdims=True)
    sim = an @ bn.T * SCALE
    rows_a += [-log_softmax(sim[r])[r] for r in range(len(idx))]
    rows_b += [-log_softmax(sim[:, r])[r] for r in range(len(idx))]
  return (np.mean(rows_a) + np.mean(rows_b)) / 2


def test_info_nce_matches_reference():
  rng = np.random.default_rng(3)
  a, b = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 5, 4))
  valid = np.ones((3, 5), bool)
  np.testing.assert_allclose(info_nce_loss(jnp.asarray(a), jnp.asarray(b), jnp.asarray(valid)),
                             ref_info_nce(a, b, valid), rtol=1e-5)
  valid[:, 1] = False  # a padded sample: neither a row nor a candidate
  np.testing.assert_allclose(info_nce_loss(jnp.asarray(a), jnp.asarray(b), jnp.asarray(valid)),
                             ref_info_nce(a, b, valid), rtol=1e-5)


def fake_outputs(rng, b, t, l, k, c, strides=(1, 2, 4, 8)):
  n = len(make_points(t, strides))
  return dict(h=rng.normal(size=(b, t, c)), query_emb=rng.normal(size=(b, c)),
              coll_v=rng.normal(size=(k, b, t, c)), coll_q_emb=rng.normal(size=(k, b, c)),
              cls_logits=rng.normal(size=(b, n)), reg=np.exp(rng.normal(size=(b, n, 2))),
              point_mask=np.ones((b, n), bool))


def fake_batch(rng, b, t):
  return dict(video_mask=np.ones((b, t), bool),
              windows=np.tile(np.array([[[2.0, 9.0], [11.0, 12.0]]]), (b, 1, 1)),
              window_mask=np.ones((b, 2), bool), saliency=rng.uniform(size=(b, t)),
              pos_clip=np.arange(b) % t, sample_mask=np.ones(b, bool))


def test_loss_fn_combines_terms_with_weights_and_references():
  rng = np.random.default_rng(4)
  c = r2_config.base()
  out, batch = fake_outputs(rng, 3, 16, 4, 4, 8), fake_batch(rng, 3, 16)
  total, terms = run_loss(out, batch, c)
  points = make_points(16, (1, 2, 4, 8))
  cls, reg = ref_targets(points, batch['windows'], batch['window_mask'], 1.5)
  pos = cls > 0
  np.testing.assert_allclose(terms['loss_reg'],
                             np.abs(out['reg'] - reg)[pos].sum() / (2 * pos.sum()), rtol=1e-5)
  z = out['cls_logits']
  p = 1 / (1 + np.exp(-z))
  p_t = p * cls + (1 - p) * (1 - cls)
  focal = (-(cls * np.log(p) + (1 - cls) * np.log(1 - p)) * (1 - p_t) ** 2).mean()
  np.testing.assert_allclose(terms['loss_cls'], focal, rtol=1e-5)
  np.testing.assert_allclose(terms['loss_sal'], ref_sampled_nce(
      out['h'], out['query_emb'], batch['video_mask'], batch['saliency'], batch['pos_clip'],
      batch['sample_mask'], 'both'), rtol=1e-5)
  v = out['coll_v'][:, np.arange(3), batch['pos_clip']]
  np.testing.assert_allclose(terms['loss_video_cal'],
                             ref_info_nce(v, out['coll_q_emb'], np.ones((4, 3), bool)), rtol=1e-5)
  np.testing.assert_allclose(terms['loss_layer_cal'], ref_info_nce(
      v.swapaxes(0, 1), out['coll_q_emb'].swapaxes(0, 1), np.ones((3, 4), bool)), rtol=1e-5)
  expected = (terms['loss_cls'] + 0.2 * terms['loss_reg'] + 0.1 * terms['loss_sal']
              + 0.1 * terms['loss_video_cal'] + 0.1 * terms['loss_layer_cal'])
  np.testing.assert_allclose(total, expected, rtol=1e-6)


def test_padded_samples_do_not_contribute():
  rng = np.random.default_rng(5)
  c = r2_config.base()
  out, batch = fake_outputs(rng, 3, 16, 4, 4, 8), fake_batch(rng, 3, 16)
  _, ref = run_loss(out, batch, c)
  # Append a padding sample full of garbage: every term must stay the same.
  padded_out = {k: np.concatenate([v, v[:, :1] * 50], axis=1) if k in ('coll_v', 'coll_q_emb')
                else np.concatenate([v, v[:1] * 50]) for k, v in out.items()}
  padded_batch = {k: np.concatenate([v, v[:1]]) for k, v in batch.items()}
  padded_batch['sample_mask'][-1] = False
  padded_batch['windows'][-1] = [[0, 16], [3, 4]]
  _, got = run_loss(padded_out, padded_batch, c)
  for name in ref:
    np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, err_msg=name)


def test_no_positive_batch_gives_zero_regression_and_finite_grads():
  rng = np.random.default_rng(6)
  c = r2_config.base()
  out, batch = fake_outputs(rng, 2, 8, 3, 4, 8), fake_batch(rng, 2, 8)
  batch['window_mask'][:] = False
  out, batch = jax.tree.map(jnp.asarray, out), jax.tree.map(jnp.asarray, batch)
  _, terms = loss_fn(out, batch, c)
  assert float(terms['loss_reg']) == 0.0
  mask = out.pop('point_mask')
  grads = jax.jit(jax.grad(lambda o: loss_fn(dict(o, point_mask=mask), batch, c)[0]))(out)
  assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))


def test_tvsum_variant_uses_dynamic_bce_and_row_nce():
  rng = np.random.default_rng(7)
  c = r2_config.base()
  c.model.update(dict(use_tef=False, strides=(1,), use_coord_head=False, merge_cls_sal=False))
  c.loss.update(dict(cls_type='dynamic_bce', sal_direction='row'))
  out, batch = fake_outputs(rng, 2, 8, 3, 4, 8, strides=(1,)), fake_batch(rng, 2, 8)
  del out['reg']
  _, terms = run_loss(out, batch, c)
  assert 'loss_reg' not in terms
  z, y = out['cls_logits'], batch['saliency']
  p = 1 / (1 + np.exp(-z))
  np.testing.assert_allclose(terms['loss_cls'], (-(y * np.log(p) + (1 - y) * np.log(1 - p))).mean(),
                             rtol=1e-5)
  np.testing.assert_allclose(terms['loss_sal'], ref_sampled_nce(
      out['h'], out['query_emb'], batch['video_mask'], batch['saliency'], batch['pos_clip'],
      batch['sample_mask'], 'row'), rtol=1e-5)
