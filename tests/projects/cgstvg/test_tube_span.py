"""`model.tube_span`: the span read again with the predicted tube's motion. The motion features
against NumPy, padding invisible, the boxes untouched by its loss, the post-processor reading it,
its loss terms and weights, the span from summed actioness equal to a brute-force search, the
still-scene pretraining unaffected, and a span learned from motion alone where the hidden states
carry none (both span forms, linear and squashed motion)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.cgstvg import synthetic
from jaxvg.projects.cgstvg import span_fit, still_grounding
from jaxvg.projects.cgstvg.losses import loss_fn
from jaxvg.projects.cgstvg.model import CGSTVG, TubeSpan, tube_motion
from jaxvg.projects.cgstvg.postprocess import best_span, postprocess

FAST_COMPILE = {'xla_backend_optimization_level': 0, 'xla_llvm_disable_expensive_passes': True}


VARIANTS = [{'span_from': 'logits', 'motion_tanh': False, 'motion_scale': 10.0},
            {'span_from': 'actioness', 'motion_tanh': True, 'motion_scale': 50.0}]


def config(enabled=True, **tube_span):
  c = synthetic.get_config('tiny')
  c.model.tube_span.enabled = enabled
  c.model.tube_span.update(tube_span)
  c.model.enc_layers = c.model.dec_layers = c.model.text.layers = 1
  return c


def batch(t=5, fill=0.0):
  rng = np.random.default_rng(0)
  b = 2
  frame_mask = np.ones((b, t), bool)
  frame_mask[1, -2:] = False
  in_span = np.zeros((b, t), bool)
  in_span[0, 1:3] = in_span[1, 0:2] = True
  c5 = rng.standard_normal((b, t, 2, 2, 2048)).astype(np.float32)
  c5[1, -2:] = fill
  tokens = rng.integers(3, 100, (b, 5)).astype(np.int32)
  tokens[1, -1] = 3 + int(fill)                # a padded text token
  text_mask = np.ones((b, 5), bool)
  text_mask[1, -1] = False
  return {'c5': c5, 'frame_mask': frame_mask, 'tokens': tokens, 'text_mask': text_mask,
          'boxes': np.tile(np.array([0.4, 0.5, 0.3, 0.4], np.float32), (b, t, 1)),
          'box_mask': in_span, 'in_span': in_span}


def test_motion_is_the_box_change_to_each_valid_neighbour():
  rng = np.random.default_rng(1)
  boxes = rng.uniform(size=(2, 5, 4)).astype(np.float32)
  mask = np.array([[True] * 5, [True, True, True, False, False]])
  motion = np.asarray(tube_motion(jnp.asarray(boxes), jnp.asarray(mask)))
  for b in range(2):
    for t in range(5):
      prev = boxes[b, t] - boxes[b, t - 1] if t > 0 and mask[b, t - 1] and mask[b, t] else 0
      nxt = boxes[b, t + 1] - boxes[b, t] if t < 4 and mask[b, t + 1] and mask[b, t] else 0
      np.testing.assert_allclose(motion[b, t], np.concatenate([np.broadcast_to(prev, 4),
                                                               np.broadcast_to(nxt, 4)]),
                                 atol=1e-6)


@pytest.mark.parametrize('variant', VARIANTS, ids=lambda v: v['span_from'])
def test_padding_is_invisible_and_the_span_leaves_the_boxes_alone(variant):
  c = config(**variant)
  model = CGSTVG(c)
  params = jax.jit(model.init, compiler_options=FAST_COMPILE)(jax.random.key(0), batch())
  outputs = [model.apply(params, batch(fill=fill)) for fill in (0.0, 5.0)]
  valid = batch()['frame_mask']
  for key in ('tube_sted', 'tube_actioness'):
    np.testing.assert_allclose(np.asarray(outputs[0][key])[valid],
                               np.asarray(outputs[1][key])[valid], rtol=1e-5, atol=1e-5)

  def tube_terms(p):
    out = model.apply(p, batch(), train=True, rngs={'dropout': jax.random.key(1)})
    _, terms = loss_fn(out, batch(), c)
    return sum(v for k, v in terms.items() if k.startswith('loss_tube_'))
  grads = jax.grad(tube_terms)(params)['params']
  assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads['bbox_embed']))
  assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads['spatial_decoder']))
  assert float(jnp.abs(grads['tube_span']['query_motion']['kernel']).max()) > 0
  assert float(jnp.abs(grads['time_layers_0']['linear1']['kernel']).max()) > 0


def test_loss_adds_its_terms_with_their_weights():
  c = config(**VARIANTS[0])                   # the head's own start/end logits
  model = CGSTVG(c)
  params = jax.jit(model.init, compiler_options=FAST_COMPILE)(jax.random.key(0), batch())
  out = model.apply(params, batch())
  total, terms = loss_fn(out, batch(), c)
  official = {k: v for k, v in out.items() if not k.startswith('tube_')}
  official_total, official_terms = loss_fn(official, batch(), c)
  assert set(terms) - set(official_terms) == {'loss_tube_sted', 'loss_tube_actioness'}
  # the same terms as the official ones computed on the tube span's logits
  swapped = dict(official, sted=jnp.stack([out['tube_sted']] * len(out['sted'])),
                 actioness=jnp.stack([out['tube_actioness']] * len(out['sted'])))
  _, swapped_terms = loss_fn(swapped, batch(), c)
  np.testing.assert_allclose(terms['loss_tube_sted'], swapped_terms['loss_sted'], rtol=1e-6)
  np.testing.assert_allclose(terms['loss_tube_actioness'], swapped_terms['loss_actioness'],
                             rtol=1e-6)
  w = c.loss
  expected = official_total + w.tube_span * (w.sted * terms['loss_tube_sted']
                                             + w.actioness * terms['loss_tube_actioness'])
  np.testing.assert_allclose(total, expected, rtol=1e-6)


def test_actioness_span_is_the_stretch_of_greatest_summed_actioness():
  """span_from='actioness': the post-processor's best pair over the start/end logits is the
  s < e maximising the actioness summed over [s, e] (valid frames only), and the loss has the
  actioness term alone."""
  c = config(span_from='actioness')
  c.model.tube_span.frame_channels = 4
  rng = np.random.default_rng(4)
  b, t = 6, 9
  frame_mask = np.ones((b, t), bool)
  frame_mask[1:, t - 3:] = rng.random((b - 1, 3)) < 0.3
  frame_mask = np.sort(frame_mask, axis=1)[:, ::-1]           # valid frames first
  args = (jnp.asarray(rng.normal(size=(b, t, c.model.hidden)), jnp.float32),
          jnp.asarray(rng.uniform(0.2, 0.8, (b, t, 4)), jnp.float32),
          jnp.asarray(rng.normal(size=(b, c.model.hidden)), jnp.float32), jnp.asarray(frame_mask))
  module = TubeSpan(c)
  sted, actioness = module.apply(module.init(jax.random.key(0), *args), *args)
  sted, actioness = np.asarray(sted, np.float64), np.asarray(actioness, np.float64)
  for i in range(b):
    valid = frame_mask[i]
    a = actioness[i][valid]
    pairs = [(s, e) for s in range(len(a)) for e in range(s + 1, len(a))]
    sums = [a[s:e + 1].sum() for s, e in pairs]
    assert best_span(*sted[i][valid].T) == pairs[int(np.argmax(sums))]

  model = CGSTVG(c)
  params = jax.jit(model.init, compiler_options=FAST_COMPILE)(jax.random.key(0), batch())
  out = model.apply(params, batch())
  total, terms = loss_fn(out, batch(), c)
  official_total, official_terms = loss_fn(
      {k: v for k, v in out.items() if not k.startswith('tube_')}, batch(), c)
  assert set(terms) - set(official_terms) == {'loss_tube_actioness'}
  np.testing.assert_allclose(
      total, official_total + c.loss.tube_span * c.loss.actioness * terms['loss_tube_actioness'],
      rtol=1e-6)


def test_postprocess_reads_the_tube_span():
  rng = np.random.default_rng(2)
  t = 6
  outputs = {'boxes': rng.uniform(0.3, 0.6, (1, 1, t, 4)), 'sted': rng.normal(size=(1, 1, t, 2)),
             'tube_sted': rng.normal(size=(1, t, 2))}
  metadata = {'qid': np.array([7]), 'frame_ids': np.arange(t)[None] * 3,
              'frame_mask': np.ones((1, t), bool), 'width': np.array([160]),
              'height': np.array([120])}
  (row,) = postprocess(outputs, metadata, config())
  s, e = best_span(*outputs['tube_sted'][0].T)
  assert row['span'] == [3 * s, 3 * e]
  assert best_span(*outputs['sted'][-1][0].T) != (s, e)   # the two spans differ here


def test_still_pretraining_is_unaffected():
  on, off = synthetic.get_config(), synthetic.get_config()
  on.model.tube_span.enabled, off.model.tube_span.enabled = True, False
  assert still_grounding.cache_path(on) == still_grounding.cache_path(off)
  assert not still_grounding.still_config(on).model.tube_span.enabled


def trajectories(rng, count, t):
  """Boxes that move one way over the span and the other way over a later or earlier stretch,
  the query's direction (+-1) and the span."""
  frames = np.arange(t)
  first, second = rng.integers(0, t // 2 - 3, count), rng.integers(t // 2, t - 3, count)
  early = rng.random(count) < 0.5                      # which stretch is the query's
  start, other = np.where(early, first, second), np.where(early, second, first)
  length, other_length = rng.integers(2, 4, count), rng.integers(2, 4, count)
  sign = rng.choice([-1.0, 1.0], count)[:, None]
  moved = (np.clip(frames[None] - start[:, None], 0, length[:, None])
           - np.clip(frames[None] - other[:, None], 0, other_length[:, None]))
  cx = rng.uniform(0.4, 0.6, count)[:, None] + sign * 0.04 * moved
  boxes = np.stack([cx, np.full_like(cx, 0.5), np.full_like(cx, 0.1), np.full_like(cx, 0.1)],
                   -1).astype(np.float32)
  in_span = (frames[None] >= start[:, None]) & (frames[None] <= (start + length)[:, None])
  return boxes, sign, in_span


def tiou(span, gt):
  s, e = span
  g = np.flatnonzero(gt)
  inter = max(0, min(e, g[-1]) - max(s, g[0]) + 1)
  return inter / (max(e, g[-1]) - min(s, g[0]) + 1)


@pytest.mark.parametrize('variant', VARIANTS, ids=lambda v: v['span_from'])
def test_learns_the_span_from_the_motion_the_query_names(variant):
  """The box moves one way over the span and the other way elsewhere; the query says which way
  (a +-1 vector), the hidden states carry nothing. Fit on such tubes as the recipe's final
  stage fits the head (`span_fit.fit`: the loss's span terms and weights), it finds the
  held-out spans far better than the best fixed span."""
  c = config(**variant)
  c.model.tube_span.update({'fit_batch_size': 32, 'fit_lr': 3e-3})
  t, n, d = 12, 32, c.model.hidden
  rng = np.random.default_rng(3)
  direction = rng.normal(size=d).astype(np.float32)

  def inputs(count):
    boxes, sign, in_span = trajectories(rng, count, t)
    return {'hidden': np.zeros((count, t, d), np.float32), 'boxes': boxes,
            'query': (sign * direction).astype(np.float32),
            'frame_mask': np.ones((count, t), bool), 'in_span': in_span}

  for _, variables in span_fit.fit(c, inputs(150 * 32), 150, seed=0):
    pass
  held_out = inputs(n)
  sted, _ = TubeSpan(c).apply(variables, *(held_out[k] for k in span_fit.SPAN_INPUTS))
  learned = np.mean([tiou(best_span(*np.asarray(sted[i]).T), held_out['in_span'][i])
                     for i in range(n)])
  fixed = max(np.mean([tiou((s, e), gt) for gt in held_out['in_span']])
              for s in range(t) for e in range(s + 1, t))
  assert learned > 0.65 and learned > fixed + 0.25, (learned, fixed)
