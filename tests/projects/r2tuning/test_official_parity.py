"""R²-Tuning against the OFFICIAL code (yeliudev/R2-Tuning + nncore 0.4.4): checkpoints, features,
predictions, loss terms and gradients made by tests/fixtures/r2tuning_official_fixtures.py.

Inference goes through the official-checkpoint loader and jaxvg's post-processing, one sample at
a time and as one bucket-padded batch (evaluation is padding-invariant). Training is compared on
the official collate's batch (padded to the batch's longest video and query) with
`official_padding=True`, and per unpadded sample in the default padding-invariant mode with
every sample padded to a bucket.
"""
from __future__ import annotations

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.projects.r2tuning import config as r2_config
from jaxvg.projects.r2tuning.convert import load_official, to_official
from jaxvg.projects.r2tuning.losses import loss_fn
from jaxvg.projects.r2tuning.model import R2Tuning
from jaxvg.projects.r2tuning.postprocess import postprocess

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / 'fixtures' / 'r2tuning_official'
META = json.loads((FIXTURES / 'meta.json').read_text())
T_BUCKET, L_BUCKET = 32, 16   # > every fixture length: padding-invariant runs pad to these
RTOL = 1e-4
SOFTMAX_INVARIANT = ('adapter.tem.cross_att.k.bias', 'adapter.tem.self_att.k.bias',
                     'adapter.v_map.bias')


def config(variant: str, official_padding: bool = False):
  """The jaxvg preset of the variant at the fixtures' widths, dropout off (as the fixtures);
  a rolled scan (the same numbers, the smallest graph to compile)."""
  c = r2_config.base() if variant == 'qvh' else r2_config.highlight('tvsum', 'BK', ('BK',), 500)
  c.model.update(dims=META['dims'], video_dims=META['video_dims'], query_dims=META['query_dims'],
                 num_tokens=META['num_tokens'], num_heads=META['num_heads'], dropout=0.0,
                 droppath=0.0, official_padding=official_padding, scan_unroll=1)
  return c


@pytest.fixture(scope='module')
def train():
  with np.load(FIXTURES / 'train.npz') as f:
    return dict(f)


def part(arrays: dict, prefix: str) -> dict:
  return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def relative_error(actual, expected) -> float:
  """max |a − e| / max |e| over a tensor."""
  actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
  return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-12))


def pad_to(x: np.ndarray, length: int, axis: int = 1) -> np.ndarray:
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, length - x.shape[axis])
  return np.pad(x, widths)


def model_batch(official: dict, fps: float, t: int | None = None, l: int | None = None) -> dict:
  """The official collated batch as a jaxvg batch (windows in clip units), optionally padded
  further to (t, l)."""
  t, l = t or official['video'].shape[1], l or official['query'].shape[1]
  batch = dict(video=pad_to(official['video'].astype(np.float32), t),
               video_mask=pad_to(official['video_mask'], t),
               query=pad_to(official['query'].astype(np.float32), l),
               query_mask=pad_to(official['query_mask'], l),
               saliency=pad_to(official['saliency'], t),
               pos_clip=official['pos_clip'].astype(np.int32),
               sample_mask=np.ones(len(official['pos_clip']), bool))
  if 'boundary' in official:
    bounds = official['boundary']
    batch['window_mask'] = np.isfinite(bounds[..., 0])
    batch['windows'] = np.where(batch['window_mask'][..., None], bounds * fps, 0.0
                                ).astype(np.float32)
  return batch


def loss_and_grads(variant: str, official_padding: bool, params, batch):
  """(weighted terms as the official output names them, gradients by official name)."""
  (_, terms), grads = step_fn(variant, official_padding)(params, jax.tree.map(jnp.asarray, batch))
  official = {k[len('module.'):]: v for k, v in to_official(grads).items()}
  return {k: float(v) for k, v in terms.items()}, official


@functools.cache
def step_fn(variant: str, official_padding: bool):
  """One jitted loss-and-gradient function per configuration (compiled once per shape)."""
  config = globals()['config'](variant, official_padding)
  weights = dict(loss_cls=config.loss.cls_weight, loss_reg=config.loss.reg_weight,
                 loss_sal=config.loss.sal_weight, loss_video_cal=config.loss.video_cal_weight,
                 loss_layer_cal=config.loss.layer_cal_weight)

  def total(p, b):
    outputs = R2Tuning(config.model).apply({'params': p}, b, train=True)  # dropout rates 0
    loss, terms = loss_fn(outputs, b, config)
    return loss, {k: v * weights[k] for k, v in terms.items()}

  return jax.jit(jax.value_and_grad(total, has_aux=True))


def assert_step_matches(terms, grads, expected: dict, what: str):
  loss, grad = part(expected, 'loss/'), part(expected, 'grad/')
  assert set(terms) == set(loss), what
  for name, value in loss.items():
    assert relative_error(terms[name], value) < RTOL, f'{what} {name}: {terms[name]} vs {value}'
  for name, value in grads.items():
    if name in SOFTMAX_INVARIANT:
      # These biases add one constant to all logits of a query: softmax is invariant to them, so
      # their gradient is zero up to rounding on both sides.
      assert np.abs(value).max() < 1e-6 and np.abs(grad[name]).max() < 1e-6, name
    elif name in grad:
      assert relative_error(value, grad[name]) < RTOL, \
          f'{what} grad {name}: {relative_error(value, grad[name]):.2e}'
    else:   # officially unreached (coef without the coord head): no gradient at all
      assert not np.any(value), f'{what} grad {name} should be zero'
  assert set(grad) <= set(grads), what


# ---- training: the official collate's batch, and one unpadded sample at a time ----

def test_padded_batch_losses_and_gradients_match_official(train):
  c = config('qvh', official_padding=True)
  params = load_official(FIXTURES / 'qvh.pth', c)
  terms, grads = loss_and_grads('qvh', True, params, model_batch(part(train, 'qvh/batch/'), 0.5))
  assert_step_matches(terms, grads, part(train, 'qvh/'), 'official padding')


def test_each_sample_padded_to_a_bucket_matches_official_one_sample_step(train):
  c = config('qvh')
  params = load_official(FIXTURES / 'qvh.pth', c)
  for i in range(4):
    expected = part(train, f'qvh_one{i}/')
    batch = model_batch(part(expected, 'batch/'), 0.5, T_BUCKET, L_BUCKET)
    terms, grads = loss_and_grads('qvh', False, params, batch)
    assert_step_matches(terms, grads, expected, f'sample {i}')


def test_tvsum_variant_padded_batch_matches_official(train):
  c = config('tvsum', official_padding=True)
  params = load_official(FIXTURES / 'tvsum.pth', c)   # `module.`-prefixed state dict
  terms, grads = loss_and_grads('tvsum', True, params, model_batch(part(train, 'tvsum/batch/'), 0.5))
  assert_step_matches(terms, grads, part(train, 'tvsum/'), 'tvsum')


def test_sampled_nce_without_column_candidates_stays_finite(train):
  """The official column term takes a log-softmax over every clip index; an index with no
  candidate in any sample is a row of -inf, NaN in the backward pass (the fixture records
  official NaN gradients). jaxvg gives the same loss with finite gradients."""
  assert int(train['qvh_nan/nan_grads']) > 0
  c = config('qvh', official_padding=True)
  params = load_official(FIXTURES / 'qvh.pth', c)
  terms, grads = loss_and_grads('qvh', True, params, model_batch(part(train, 'qvh_nan/batch/'), 0.5))
  for name, value in part(train, 'qvh_nan/loss/').items():
    assert relative_error(terms[name], value) < RTOL, name
  assert all(np.isfinite(g).all() for g in grads.values())


def test_data_path_official_padding_batch_equals_official_collate(train):
  """jaxvg's reader, targets and collate with official_padding=True give the official collated
  batch (padded to the batch's longest video and query); the positive clip is drawn by each
  side's own sampler, so it only has to be a clip the official sampler could draw."""
  from jaxvg.data.readers import read_split
  from jaxvg.data.temporal import TemporalGroundingData
  c = config('qvh', official_padding=True)
  c.data.update(anno_dir=str(FIXTURES), feature_dir=str(FIXTURES))
  records = read_split('qvhighlights', str(FIXTURES), 'train').records
  data = TemporalGroundingData.from_config(c, train=True, seed=0)
  examples = [data.example(r, epoch=0, index=i) for i, r in enumerate(records)]
  batch, _ = data.collate(examples, max(data.length(r) for r in records))
  expected = model_batch(part(train, 'qvh/batch/'), fps=0.5)
  for key in ('video', 'video_mask', 'query', 'query_mask', 'saliency'):
    np.testing.assert_array_equal(batch[key], expected[key], err_msg=key)
  g = expected['windows'].shape[1]
  np.testing.assert_array_equal(batch['window_mask'][:, :g], expected['window_mask'])
  assert not batch['window_mask'][:, g:].any()
  np.testing.assert_allclose(batch['windows'][:, :g][expected['window_mask']],
                             expected['windows'][expected['window_mask']], rtol=1e-6)
  rows = np.arange(len(records))
  assert np.all(expected['saliency'][rows, batch['pos_clip']] > 0)


# ---- inference: official checkpoint -> predictions, as the official validation makes them ----

def val_samples(anno: str):
  rows = [json.loads(line) for line in (FIXTURES / anno).read_text().splitlines()]
  video = lambda r: np.load(FIXTURES / 'clip_b32_vid_k4' / f"{r['vid']}.npy")
  query = lambda r: np.load(FIXTURES / 'clip_b32_txt_k4' / f"{r['qid']}.npy")
  return rows, [video(r) for r in rows], [query(r) for r in rows]


@functools.cache
def forward_fn(variant: str):
  model = R2Tuning(config(variant).model)
  return jax.jit(lambda p, b: model.apply({'params': p}, b))


def predict(variant: str, params, videos, queries) -> dict:
  """Features padded to the buckets in one batch -> model outputs (numpy), padding-invariant."""
  t, l = T_BUCKET, L_BUCKET
  batch = dict(
      video=np.stack([pad_to(v.astype(np.float32), t, 0) for v in videos]),
      video_mask=np.stack([np.arange(t) < len(v) for v in videos]),
      query=np.stack([pad_to(q.astype(np.float32), l, 0) for q in queries]),
      query_mask=np.stack([np.arange(l) < len(q) for q in queries]))
  return jax.tree.map(np.asarray, forward_fn(variant)(params, batch))


def assert_rows_match(rows, expected):
  for row, official in zip(rows, expected, strict=True):
    assert (row['qid'], row['vid']) == (official['qid'], official['vid'])
    np.testing.assert_allclose(row['pred_saliency_scores'], official['pred_saliency_scores'],
                               rtol=RTOL, atol=1e-6, err_msg=f"saliency {row['qid']}")
    if 'pred_relevant_windows' not in official:
      continue
    got, want = np.asarray(row['pred_relevant_windows']), np.asarray(
        official['pred_relevant_windows'])
    assert got.shape == want.shape
    # Windows NMS has zeroed tie at score 0, in no defined order: compare those as a set.
    live = want[:, 2] > 1e-6
    np.testing.assert_allclose(got[live], want[live], rtol=RTOL, atol=1e-5,
                               err_msg=f"windows {row['qid']}")
    dead = lambda w: w[np.lexsort(w[:, :2].T[::-1])][:, :2]
    np.testing.assert_allclose(dead(got[~live]), dead(want[~live]), rtol=RTOL, atol=1e-5)
    assert np.all(got[~live, 2] < 1e-6)


@pytest.mark.parametrize('dataset', ['qvhighlights', 'charades_sta'])
def test_bucket_padded_predictions_match_official_one_sample_validation(dataset):
  settings = META['datasets'][dataset]
  c = config('qvh')
  c.post.update(unit=settings['unit'], nms_type=settings['nms_type'],
                nms_threshold=settings['nms_threshold'])
  params = load_official(FIXTURES / 'qvh.pth', c)
  rows, videos, queries = val_samples(settings['anno'])
  expected = json.loads((FIXTURES / 'predictions.json').read_text())[dataset]
  meta = lambda rs: dict(qid=[r['qid'] for r in rs], vid=[r['vid'] for r in rs],
                         duration=[r['duration'] for r in rs], fps=[settings['fps']] * len(rs))
  assert_rows_match(postprocess(predict('qvh', params, videos, queries), meta(rows), c), expected)


def test_tvsum_saliency_matches_official():
  c = config('tvsum')
  params = load_official(FIXTURES / 'tvsum.pth', c)
  expected = json.loads((FIXTURES / 'predictions.json').read_text())['tvsum']
  videos = [np.load(FIXTURES / 'clip_b32_vid_k4' / f"{r['vid']}.npy") for r in expected]
  queries = [np.load(FIXTURES / 'clip_b32_txt_k4' / f"{r['vid']}.npy") for r in expected]
  out = predict('tvsum', params, videos, queries)
  for i, row in enumerate(expected):
    n = len(videos[i])
    np.testing.assert_allclose(out['saliency'][i, :n], row['pred_saliency_scores'], rtol=RTOL,
                               atol=1e-6, err_msg=row['vid'])


# ---- the official engine's learning-rate schedule (nncore LrUpdaterHook) ----

@pytest.mark.parametrize('case, steps_per_epoch, warmup, decay_epochs', [
    ('default', 30, 500, (20,)),          # the official stage as configured
    ('decay_in_warmup', 7, 20, (2, 4)),   # decay epochs starting inside the warm-up
])
def test_schedule_matches_nncore_every_iteration(train, case, steps_per_epoch, warmup,
                                                 decay_epochs):
  from jaxvg.train.optim import learning_rate_schedule
  c = r2_config.base()
  c.optim.update(warmup_steps=warmup, decay_epochs=decay_epochs)
  expected = train[f'schedule/{case}']
  steps = np.arange(len(expected))
  np.testing.assert_allclose(jax.vmap(learning_rate_schedule(c.optim, steps_per_epoch))(steps),
                             expected, rtol=1e-6)
  c.optim.warmup_mode = 'multiply'
  multiply = jax.vmap(learning_rate_schedule(c.optim, steps_per_epoch))(steps)
  assert (relative_error(multiply, expected) > 0.5) == (case == 'decay_in_warmup')
