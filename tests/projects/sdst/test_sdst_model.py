"""SDST model: scan equals the unrolled loop, padding invariance, token pooling, finite grads."""
import jax
import numpy as np
import pytest

from jaxvg.projects.sdst.losses import loss_fn
from jaxvg.projects.sdst.model import SDST, pool_clip_tokens

from .conftest import collate, random_sample, tiny_config

PER_QUERY = ('logits', 'actionness', 'spans')


def _samples(config, seed=0):
  rng = np.random.default_rng(seed)
  return [random_sample(rng, config, 11, 5, [(2, 6), (8, 11)]),
          random_sample(rng, config, 7, 3, [(1, 3)])]


def _init(config, batch):
  return jax.jit(SDST(config.model).init)(jax.random.key(0), batch)


# 'deformable' differs from 'rdsa' only in where its offsets come from (the same sampling).
@pytest.mark.parametrize('attention,pooling,selection', [
    ('rdsa', 'cls', 'learned'), ('cross', 'cls', 'learned'), ('rdsa', 'query', 'learned'),
    ('rdsa', 'cls', 'dense')])
def test_padding_invariance(attention, pooling, selection):
  """A bucketed batch (padded clips, tokens, windows and one padding sample) gives every real
  sample what it gets alone at its exact length; 'query' pools 4 CLIP tokens per clip under the
  query (a non-zero pooling scale, so the pooling counts); 'dense' selects the first references
  from the clips (padded clips must never be chosen)."""
  config = tiny_config(video_attention=attention, clip_pooling=pooling,
                       num_tokens=4 if pooling == 'query' else 0, query_selection=selection)
  samples = _samples(config)
  batch = collate(samples + [None], 16, 8, 4)
  model = SDST(config.model)
  params = _init(config, batch)
  if pooling == 'query':
    params['params']['pool_scale'] = np.full(config.model.num_layers, 0.8, np.float32)
  apply = jax.jit(model.apply)
  padded = apply(params, batch)
  for i, s in enumerate(samples):
    alone = apply(params, collate([s], s['video'].shape[0], s['query'].shape[0], 4))
    n = s['video'].shape[0]
    for key in PER_QUERY:
      np.testing.assert_allclose(padded[key][i], alone[key][0], atol=2e-5, err_msg=key)
    np.testing.assert_allclose(padded['saliency_steps'][i, :, :n], alone['saliency_steps'][0],
                               atol=2e-5)
    np.testing.assert_array_equal(padded['saliency'][i, n:], 0.0)
    if selection == 'dense':
      np.testing.assert_allclose(padded['proposal_logits'][i, :, :n],
                                 alone['proposal_logits'][0], atol=2e-5)


def test_loss_ignores_padding_samples():
  config = tiny_config()
  samples = _samples(config)
  model = SDST(config.model)
  batch = collate(samples, 16, 8, 4)
  params = _init(config, batch)
  with_pad = collate(samples + [None, None], 16, 8, 4)
  f = jax.jit(lambda p, b: loss_fn(model.apply(p, b), b, config))
  (loss, terms), (loss_pad, terms_pad) = f(params, batch), f(params, with_pad)
  for name in terms:
    np.testing.assert_allclose(terms_pad[name], terms[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_scan_equals_unrolled_and_gradients_are_finite():
  config = tiny_config()
  unrolled = tiny_config(scan=False)
  samples = _samples(config, seed=1)
  batch = collate(samples + [None], 12, 8, 4)
  params = _init(config, batch)
  assert jax.tree.structure(params) == jax.tree.structure(
      jax.eval_shape(SDST(unrolled.model).init, jax.random.key(0), batch))
  a = jax.jit(SDST(config.model).apply)(params, batch)
  b = jax.jit(SDST(unrolled.model).apply)(params, batch)
  for key in a:
    np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)

  train = tiny_config(dropout=0.5, droppath=0.1)
  model = SDST(train.model)

  def loss(p):
    out = model.apply(p, batch, train=True,
                      rngs={'dropout': jax.random.key(1), 'droppath': jax.random.key(2)})
    return loss_fn(out, batch, train)[0]
  value, grads = jax.jit(jax.value_and_grad(loss))(params)
  assert np.isfinite(value)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  # Every step is supervised: the initial spans get a gradient through the first step only.
  assert np.abs(grads['params']['query_spans']).sum() > 0


def test_clip_token_features_are_pooled():
  tokens = np.random.default_rng(3).normal(size=(2, 4, 3, 5, 6)).astype(np.float32)
  np.testing.assert_array_equal(pool_clip_tokens(tokens, 'cls'), tokens[:, :, :, 0])
  np.testing.assert_allclose(pool_clip_tokens(tokens, 'mean'), tokens.mean(3), atol=1e-6)
  np.testing.assert_array_equal(pool_clip_tokens(tokens[:, :, :, 0], 'mean'), tokens[:, :, :, 0])
  with pytest.raises(ValueError, match='clip_pooling'):
    pool_clip_tokens(tokens, 'max')
  np.testing.assert_array_equal(pool_clip_tokens(tokens, 'query'), tokens)   # pooled per step
  with pytest.raises(ValueError, match="'query' pools CLIP tokens"):
    pool_clip_tokens(tokens[:, :, :, 0], 'query')


def test_query_pooling_starts_as_cls_and_reads_the_query():
  """clip_pooling='query': with its zero-initialised scale the model is the CLS-pooling model
  (the same outputs from the same shared parameters); once the scale moves, each clip's vector
  depends on the query, which it never does with CLS pooling."""
  query_config = tiny_config(clip_pooling='query', num_tokens=4)
  cls_config = tiny_config(clip_pooling='cls', num_tokens=4)
  batch = collate(_samples(query_config, seed=2), 12, 6, 3)
  params = _init(query_config, batch)
  cls_params = {'params': {k: v for k, v in params['params'].items() if k != 'pool_scale'}}
  cls_params['params']['step'] = {k: v for k, v in params['params']['step'].items()
                                  if not k.startswith('pool_')}
  assert jax.tree.structure(cls_params) == jax.tree.structure(
      jax.eval_shape(SDST(cls_config.model).init, jax.random.key(0), batch))
  query_apply = jax.jit(SDST(query_config.model).apply)
  cls_apply = jax.jit(SDST(cls_config.model).apply)
  at_init = query_apply(params, batch)
  for key, value in cls_apply(cls_params, batch).items():
    np.testing.assert_allclose(at_init[key], value, atol=1e-6, err_msg=key)

  params['params']['pool_scale'] = np.full(query_config.model.num_layers, 0.8, np.float32)
  other_query = dict(batch, query=batch['query'][::-1], query_mask=batch['query_mask'][::-1])
  n = int(batch['video_mask'][0].sum())
  for apply, p, reads_query in ((query_apply, params, True), (cls_apply, cls_params, False)):
    emb = apply(p, batch)['video_emb'][0, :, :n]
    emb_other = apply(p, other_query)['video_emb'][0, :, :n]
    assert np.abs(emb - emb_other).max() > 1e-3 if reads_query else np.allclose(emb, emb_other)


def test_a_nonzero_pool_scale_init_reads_the_query_from_the_start():
  """model.pool_scale_init sets every step's s_l, so the clip vectors depend on the query at
  initialisation (the synthetic config's start)."""
  config = tiny_config(clip_pooling='query', num_tokens=4, pool_scale_init=0.5)
  batch = collate(_samples(config, seed=2), 12, 6, 3)
  params = _init(config, batch)
  np.testing.assert_array_equal(params['params']['pool_scale'], np.full(3, 0.5, np.float32))
  apply = jax.jit(SDST(config.model).apply)
  other_query = dict(batch, query=batch['query'][::-1], query_mask=batch['query_mask'][::-1])
  n = int(batch['video_mask'][0].sum())
  emb = apply(params, batch)['video_emb'][0, :, :n]
  assert np.abs(emb - apply(params, other_query)['video_emb'][0, :, :n]).max() > 1e-3


def test_detector_initialisation():
  """class_prior sets the class bias (σ = prior for a zero hidden state, Deformable DETR); a
  zero-initialised span head leaves every step's span at the learned initial reference; both
  off give PyTorch's default init."""
  config = tiny_config()
  batch = collate(_samples(config), 12, 6, 3)
  params = _init(config, batch)
  bias = params['params']['step']['class_head']['bias']
  np.testing.assert_allclose(jax.nn.sigmoid(bias), config.model.class_prior, rtol=1e-5)
  outputs = SDST(config.model).apply(params, batch)
  initial = np.asarray(jax.nn.sigmoid(params['params']['query_spans']))
  for step in range(config.model.num_layers):
    np.testing.assert_allclose(outputs['spans'][:, step], np.stack([initial] * 2), rtol=1e-5)
  config = tiny_config(class_prior=0.5, span_head_zero_init=False)
  params = _init(config, batch)
  assert np.all(params['params']['step']['class_head']['bias'] == 0)
  outputs = SDST(config.model).apply(params, batch)
  assert not np.allclose(outputs['spans'][:, 0], outputs['spans'][:, -1])


def test_the_sparse_group_lr_scales_only_the_decoders_updates():
  """`optim.groups.sparse.lr_scale` scales the first AdamW update of the sparse stream's
  parameters (the decoder queries, their layer and heads) and of nothing else."""
  from jaxvg import registry
  from jaxvg.train.optim import make_optimizer
  config = tiny_config()
  batch = collate(_samples(config), 12, 8, 4)
  params = _init(config, batch)['params']
  task = registry.get_task('sdst')
  labels = task.training.param_labels(config, params)
  assert set(jax.tree.leaves(labels)) == {'sparse', 'default'}
  assert labels['query_hidden'] == 'sparse' and labels['step']['sparse']['ffn_norm']['scale'] \
      == 'sparse' and labels['step']['dense']['ffn_norm']['scale'] == 'default'
  grads = jax.grad(lambda p: loss_fn(SDST(config.model).apply({'params': p}, batch), batch,
                                     config)[0])(params)
  updates = {}
  for scale in (1.0, 0.5):
    config.optim.groups.sparse.lr_scale = scale
    tx = make_optimizer(config.optim, steps_per_epoch=10, labels=labels)
    updates[scale] = tx.update(grads, tx.init(params), params)[0]
  for label, u1, u2 in zip(jax.tree.leaves(labels), jax.tree.leaves(updates[1.0]),
                           jax.tree.leaves(updates[0.5])):
    np.testing.assert_allclose(u2, u1 * (0.5 if label == 'sparse' else 1.0), rtol=1e-5,
                               atol=1e-12)
