"""SDST's denoising queries (`model.dn_groups`, DN-DETR / DINO): the noise stays in its band,
the attention mask isolates the groups and hides them from the matching queries, the matching
queries' outputs do not change when denoising queries join them, evaluation has none, and the
denoising terms equal a NumPy reference."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.modules.attention import MultiHeadAttention
from jaxvg.projects.sdst import denoising
from jaxvg.projects.sdst.losses import denoising_losses, loss_fn
from jaxvg.projects.sdst.model import SDST

from .conftest import collate, random_sample, tiny_config
from .test_sdst_losses import _iou_giou, _sig, _xx

RNGS = dict(dropout=jax.random.key(1), droppath=jax.random.key(2))


def _cxw(xx):
  return np.stack([(xx[..., 0] + xx[..., 1]) / 2, xx[..., 1] - xx[..., 0]], -1)


@pytest.mark.parametrize('negatives', [False, True])
def test_noise_stays_in_its_band(negatives):
  rng = np.random.default_rng(0)
  starts = rng.uniform(0.2, 0.5, (64, 3))
  gt = jnp.asarray(_cxw(np.stack([starts, starts + rng.uniform(0.05, 0.3, (64, 3))], -1)),
                   jnp.float32)
  noise, groups = 0.4, 4
  spans, index, positive = denoising.noised_spans(jax.random.key(0), gt, groups, noise, negatives)
  per_group = 2 if negatives else 1
  assert spans.shape == (64, groups * per_group * 3, 2)
  np.testing.assert_array_equal(index, np.tile(np.arange(3), groups * per_group))
  np.testing.assert_array_equal(positive, np.tile(np.repeat(np.arange(per_group) == 0, 3), groups))
  # Every GT edge lies inside [0.2, 0.8] and moves by at most 2·noise half-widths (< 0.3): no
  # clipping, so each edge's move, in half-widths, lies in its band.
  edges, gt_edges = _xx(np.asarray(spans)), _xx(np.asarray(gt))[:, index]
  moved = np.abs(edges - gt_edges) / (np.asarray(gt)[:, index, 1:] / 2)
  assert (moved[:, positive] < noise + 1e-5).all()
  assert (moved[:, ~positive] >= noise - 1e-5).all() and (moved[:, ~positive] < 2 * noise).all()
  assert (spans[..., 1] >= denoising.MIN_WIDTH).all()
  assert moved[:, positive].max() > 0.9 * noise       # the band is used, not only its middle


def test_attention_mask():
  slots = np.array([[True, False, True, False], [True, True, True, True]])   # 2 groups of 2
  mask = np.asarray(denoising.attention_mask(3, 2, jnp.asarray(slots)))
  assert mask.shape == (2, 7, 7)
  group = np.array([-1, -1, -1, 0, 0, 1, 1])
  for b in range(2):
    real = np.concatenate([[True] * 3, slots[b]])
    for i in range(7):
      for j in range(7):
        expected = (group[j] < 0) or (group[i] == group[j] and real[j])
        assert mask[b, i, j] == expected, (b, i, j)


def test_a_per_query_key_mask_is_each_query_alone():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 5, 8)), jnp.float32)
  mask = jnp.asarray(rng.uniform(size=(2, 5, 5)) > 0.4) | jnp.eye(5, dtype=bool)
  att = MultiHeadAttention(8, 2)
  params = att.init(jax.random.key(0), x, x, x)
  out = att.apply(params, x, x, x, mask)
  for i in range(5):
    alone = att.apply(params, x[:, i:i + 1], x, x, mask[:, i])
    np.testing.assert_allclose(out[:, i:i + 1], alone, atol=1e-6)


def _batch(config):
  rng = np.random.default_rng(0)
  samples = [random_sample(rng, config, 11, 5, [(2, 6), (8, 11)]),
             random_sample(rng, config, 7, 3, [(1, 3)])]
  return collate(samples + [None], 16, 8, 3)


def test_matching_queries_do_not_see_the_denoising_queries():
  config = tiny_config(dn_groups=3, dn_negatives=True)
  batch = _batch(config)
  params = jax.jit(SDST(config.model).init)(jax.random.key(0), batch)
  with_dn = jax.jit(lambda p, b: SDST(config.model).apply(p, b, train=True, rngs=RNGS))(
      params, batch)
  plain = jax.jit(lambda p, b: SDST(tiny_config().model).apply(p, b, train=True, rngs=RNGS))(
      params, batch)
  assert with_dn['dn_logits'].shape == (3, 3, 3 * 2 * 3)
  for key in ('logits', 'actionness', 'spans', 'sampling_positions', 'saliency_steps'):
    np.testing.assert_allclose(with_dn[key], plain[key], atol=1e-5, err_msg=key)
  evaluation = jax.jit(SDST(config.model).apply)(params, batch)
  assert not any(key.startswith('dn_') for key in evaluation)
  np.testing.assert_allclose(evaluation['spans'],
                             jax.jit(SDST(tiny_config().model).apply)(params, batch)['spans'],
                             atol=1e-6)

  def loss(p):
    out = SDST(config.model).apply(p, batch, train=True, rngs=RNGS)
    return loss_fn(out, batch, config)
  (value, _), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
  assert np.isfinite(value) and all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  assert np.abs(grads['params']['dn_hidden']).sum() > 0
  # The denoising terms enter the total with the matched terms' weights times loss.dn_weight.
  config.loss.dn_weight = 0.5
  without = loss_fn({k: v for k, v in with_dn.items() if not k.startswith('dn_')}, batch, config)
  total, terms = loss_fn(with_dn, batch, config)
  expected = sum(0.5 * config.loss[f'{name}_weight'] * terms[f'loss_dn_{name}']
                 for name in ('cls', 'l1', 'giou', 'actionness'))
  np.testing.assert_allclose(total, without[0] + expected, rtol=1e-5)


def test_denoising_losses_match_numpy():
  config = tiny_config()
  cfg = config.loss
  batch = _batch(config)
  rng = np.random.default_rng(1)
  b, k, g, groups = 3, 2, 3, 2
  index = np.tile(np.arange(g), 2 * groups)
  positive = np.tile(np.repeat([True, False], g), groups)
  n = index.size
  outputs = dict(dn_logits=rng.normal(size=(b, k, n)).astype(np.float32),
                 dn_actionness=rng.normal(size=(b, k, n)).astype(np.float32),
                 dn_spans=np.stack([rng.uniform(0.1, 0.9, (b, k, n)),
                                    rng.uniform(0.05, 0.6, (b, k, n))], -1).astype(np.float32),
                 dn_index=index, dn_positive=positive)
  terms = denoising_losses(outputs, batch, cfg)

  lengths = batch['video_mask'].sum(-1)
  real = batch['window_mask'] & batch['sample_mask'][:, None]
  sums = dict(cls=0.0, l1=0.0, giou=0.0, actionness=0.0)
  num_pos = num_real = 0
  for i in range(b):
    gt = batch['windows'][i] / max(lengths[i], 1)
    gt = np.stack([gt.mean(1), gt[:, 1] - gt[:, 0]], -1)
    for step in range(k):
      for q in range(n):
        if not real[i, index[q]]:
          continue
        label = float(positive[q])
        p = _sig(outputs['dn_logits'][i, step, q].astype(np.float64))
        ce = -(label * np.log(p) + (1 - label) * np.log(1 - p))
        p_t = p * label + (1 - p) * (1 - label)
        alpha_t = cfg.focal_alpha * label + (1 - cfg.focal_alpha) * (1 - label)
        sums['cls'] += alpha_t * ce * (1 - p_t)**cfg.focal_gamma
        span, target = outputs['dn_spans'][i, step, q].astype(np.float64), gt[index[q]]
        iou, giou = _iou_giou(_xx(span), _xx(target))
        sums['actionness'] += abs(_sig(outputs['dn_actionness'][i, step, q]) - label * iou)
        num_real += step == 0
        if positive[q]:
          sums['l1'] += np.abs(span - target).sum()
          sums['giou'] += 1 - giou
          num_pos += step == 0
  for name in ('cls', 'l1', 'giou'):
    np.testing.assert_allclose(terms[f'loss_dn_{name}'], sums[name] / num_pos, rtol=1e-5,
                               err_msg=name)
  np.testing.assert_allclose(terms['loss_dn_actionness'], sums['actionness'] / num_real,
                             rtol=1e-5)
