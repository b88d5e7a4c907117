"""NST on CG-STVG through the 'nst' task: the points and their declarations (the skip-path
caveat), the HQ guarantee on the whole model, a training step that moves only the units, the
on-device degradation per video and the mixed-quality splits."""
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.nst import synthetic
from jaxvg import configs, registry
from jaxvg.errors import UserError
from jaxvg.data import degradations as dg
from jaxvg.modules import nullspace
from jaxvg.projects.cgstvg.model import CGSTVG
from jaxvg.projects.nst import cgstvg, data, injection
from jaxvg.projects.nst.config import NSTConfig, PointSpec
from jaxvg.train import trainer
from jaxvg.train.optim import make_optimizer
from jaxvg.train.state import count_params

FAST_COMPILE = {'xla_backend_optimization_level': 0, 'xla_llvm_disable_expensive_passes': True}
POINTS = ('input_proj', 'encoder_ffn', 'temporal_decoder_ffn', 'spatial_decoder_ffn')


def tiny_config(arg=''):
  c = synthetic.get_config(arg)
  c.model.use_swin = False        # the batches below hold C5 alone
  c.model.enc_layers = 1
  c.model.dec_layers = 1
  c.model.text.layers = 1
  c.model.max_video_len = 8
  c.model.ffn_dims = 512          # FFN linear2 512 -> 256: a null space of dimension 256
  c.nst.points = POINTS
  c.nst.generator_hidden = 8
  c.nst.quality_hidden = 8
  c.nst.lora_rank = 4
  return c


def c5_batch(low_quality=(False, True)):
  """Two 4-frame videos fed as C5 maps (no ResNet); the 'degraded' one is noisier."""
  rng = np.random.default_rng(0)
  b, t = 2, 4
  c5 = np.abs(rng.standard_normal((b, t, 2, 2, 2048))).astype(np.float32)
  for i, lq in enumerate(low_quality):
    if lq:
      c5[i] = c5[i] * 0.3 + np.abs(rng.standard_normal(c5[i].shape)) * 1.5
  in_span = np.array([[False, True, True, False], [True, True, True, True]])
  return {'c5': c5, 'frame_mask': np.array([[True] * 4, [True, True, True, False]]),
          'tokens': rng.integers(3, 100, (b, 5)).astype(np.int32),
          'text_mask': np.array([[True] * 5, [True] * 3 + [False] * 2]),
          'boxes': np.tile(np.array([0.4, 0.5, 0.3, 0.4], np.float32), (b, t, 1)),
          'box_mask': in_span, 'in_span': in_span, 'sample_mask': np.ones(b, bool),
          'degrade_kind': np.array([dg.KINDS.index('jpeg') if lq else 0 for lq in low_quality],
                                   np.int32)}


@functools.lru_cache(maxsize=None)
def setup():
  config = tiny_config()
  model = registry.get_task('nst').build_model(config)
  params = jax.jit(model.init, compiler_options=FAST_COMPILE)(
      jax.random.key(0), c5_batch())['params']
  return config, model, params


def randomise_units(params, scale=0.05):
  """Non-zero units everywhere (as after training), the base untouched."""
  leaves, tree = jax.tree_util.tree_flatten_with_path(params)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  return jax.tree_util.tree_unflatten(tree, [
      leaf if jax.tree_util.keystr(path).startswith("['base']")
      else leaf + scale * jax.random.normal(key, leaf.shape)
      for (path, leaf), key in zip(leaves, keys)])


def test_point_groups_expand_per_layer():
  config = tiny_config()
  config.model.enc_layers = 2
  points = cgstvg.expand_points(POINTS, config.model)
  assert [p['path'] for p in points] == [
      'input_proj', 'spatial_layers_0/linear2', 'spatial_layers_1/linear2',
      'time_layers_0/linear2', 'spatial_decoder/layers_0/linear2']
  assert points[0]['pool_axes'] == (2, 3) and points[1]['pool_axes'] == (2,)
  with pytest.raises(Exception, match='use_swin'):
    cgstvg.expand_points(('input_proj2',), config.model)


@pytest.mark.parametrize('path', ['resnet/layer2_0/conv1',
                                  'spatial_decoder/ref_point_head/layers_0'])
def test_skip_path_inputs_are_refused_or_flagged(path):
  """§3.3: a layer whose input also feeds a skip path (ResNet conv1, ref_point_head's first
  layer) is refused; allowed, it is flagged. LoRA there needs no declaration."""
  base = CGSTVG(tiny_config())
  with pytest.raises(injection.InjectionPointError, match='skip path'):
    injection.resolve_points(base, NSTConfig(points=(PointSpec(path),)))
  with pytest.warns(UserWarning, match='shared input'):
    flagged = injection.resolve_points(
        base, NSTConfig(points=(PointSpec(path),), allow_shared_inputs=True))
  assert flagged[0].flagged and flagged[0].consumers == 'shared'
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    assert not injection.resolve_points(
        base, NSTConfig(method='lora', points=(PointSpec(path),)))[0].flagged
  with pytest.raises(injection.InjectionPointError, match='does not declare'):
    injection.resolve_points(base, NSTConfig(points=(PointSpec('bbox_embed/layers_0'),)))


def test_hq_guarantee_on_the_whole_model():
  """With q = 0 the tuned CG-STVG's outputs equal the frozen base's, for trained (random,
  non-zero) units at every exact point; q = 1 moves them. The bases come in the batch, as the
  engine's frozen backbone gives them; the describe lines report each point's null space."""
  config, model, params = setup()
  base_out = CGSTVG(config).apply({'params': params['base']}, c5_batch())
  bases = cgstvg.bases(params['base'], config)
  dims = {name: nullspace.null_dimension(entry) for name, entry in bases.items()}
  assert dims == {'residual_input_proj': 1792, 'residual_spatial_layers_0.linear2': 256,
                  'residual_time_layers_0.linear2': 256,
                  'residual_spatial_decoder.layers_0.linear2': 256}
  trained = randomise_units(params)
  batch = {**c5_batch(), cgstvg.BASES_KEY: bases}
  apply = jax.jit(lambda p, q: model.apply({'params': p}, batch, quality=q),
                  compiler_options=FAST_COMPILE)
  hq = apply(trained, 0.0)
  lq = apply(trained, 1.0)
  for key in ('boxes', 'sted', 'actioness', 'conf'):
    scale = float(np.abs(base_out[key]).max())
    np.testing.assert_allclose(hq[key], base_out[key], atol=1e-5 * scale, rtol=0)
  assert float(np.abs(lq['sted'] - base_out['sted']).max()) > 1e-3
  lines = injection.describe({'params': params, nullspace.COLLECTION: bases}, model.base,
                             model.nst)
  assert lines[0] == 'input_proj: kernel (1, 1, 2048, 256), input exclusive, null-space dim 1792'
  units = sum(x.size for name, sub in params.items() if name != 'base'
              for x in jax.tree.leaves(sub))
  assert lines[-1] == f'trainable parameters (nst): {units:,}'


@pytest.mark.parametrize('arg', ['lora', 'full'])
def test_foils_label_their_parameters(arg):
  """LoRA trains its units only; full fine-tuning the points' own kernels and biases only."""
  config = tiny_config(arg)
  model = registry.get_task('nst').build_model(config)
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), c5_batch()))['params']
  labels = registry.get_task('nst').training.param_labels(config, params)
  trainable = {jax.tree_util.keystr(path) for path, label
               in jax.tree_util.tree_flatten_with_path(labels)[0] if label == 'default'}
  if arg == 'lora':
    assert trainable == {f"['lora_{unit}']['{name}']" for name in ('down', 'up') for unit in (
        'input_proj', 'spatial_layers_0.linear2', 'time_layers_0.linear2',
        'spatial_decoder.layers_0.linear2')}
  else:
    assert trainable == {f"['base']{''.join(f'[{p!r}]' for p in path.split('/'))}['{name}']"
                         for name in ('kernel', 'bias') for path in (
                             'input_proj', 'spatial_layers_0/linear2', 'time_layers_0/linear2',
                             'spatial_decoder/layers_0/linear2')}
  # the engine counts the same parameters as trainable (its start-up line, --mode info)
  mask = trainer.trainable_mask(registry.get_task('nst'), config, params)
  assert count_params(params, mask) == sum(
      x.size for path, x in jax.tree_util.tree_flatten_with_path(params)[0]
      if jax.tree_util.keystr(path) in trainable)


def test_train_step_moves_only_the_units():
  """The task's labels, the engine's optimiser and the task's loss (with the QAU's BCE): the
  base gets no gradient at all (stop_gradient) and stays bit for bit; the units learn."""
  config, model, params = setup()
  task = registry.get_task('nst')
  batch = {**c5_batch(), cgstvg.BASES_KEY: cgstvg.bases(params['base'], config)}
  labels = task.training.param_labels(config, params)
  assert set(jax.tree.leaves(labels['base'])) == {'frozen'}
  assert set(jax.tree.leaves({k: v for k, v in labels.items() if k != 'base'})) == {'default'}
  tx = make_optimizer(config.optim, steps_per_epoch=100, labels=labels)

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
  def step(params, opt_state, key):
    def loss_of(p):
      out = model.apply({'params': p}, batch, train=True, rngs={'dropout': key})
      return task.training.loss_fn(out, batch, config)
    (loss, terms), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return jax.tree.map(jnp.add, params, updates), opt_state, loss, terms, grads

  opt_state, history = tx.init(params), []
  new = params
  for i in range(6):
    new, opt_state, loss, terms, grads = step(new, opt_state, jax.random.key(i))
    history.append(float(terms.get('quality_bce', loss)))
  assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads['base']))
  for old, kept in zip(jax.tree.leaves(params['base']), jax.tree.leaves(new['base'])):
    np.testing.assert_array_equal(old, kept)
  moved = [k for k in params if k != 'base' and not all(
      np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params[k]), jax.tree.leaves(new[k])))]
  assert moved
  assert history[-1] < history[0], history


def test_degradation_is_per_video_whatever_the_batch():
  """A video's degraded frames depend on its own (kind, severity, seed) only, not on its
  position or neighbours in the batch; clean videos pass unchanged."""
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, (3, 2, 16, 16, 3), dtype=np.uint8)
  kinds = np.array([dg.KINDS.index('gaussian_noise'), 0, dg.KINDS.index('jpeg')], np.int32)
  batch = {'frames': frames, 'degrade_kind': kinds, 'degrade_severity': np.array([3, 0, 5]),
           'degrade_seed': np.array([7, 8, 9], np.uint32)}
  degrade = jax.jit(functools.partial(cgstvg.degrade, radius_scale=1.0))
  out = np.asarray(degrade(batch)['frames'])
  swapped = np.asarray(degrade({k: v[::-1] for k, v in batch.items()})['frames'])[::-1]
  np.testing.assert_array_equal(out, swapped)
  np.testing.assert_array_equal(out[1], frames[1])
  assert np.abs(out[0].astype(int) - frames[0]).mean() > 5


class ListAdapter:
  """The smallest real tube-like DataAdapter: records carry their example; with `halves`, each
  example is two batch rows (as `TubeData` with `data.test_halves`)."""

  def __init__(self, halves: bool = False):
    self.halves = halves

  def length(self, record):
    return 1

  def example(self, record, *, epoch, index):
    return {'value': record.value}

  def rows(self, examples):
    return [e for e in examples for _ in range(2 if self.halves else 1)]

  def collate_rows(self, rows, length):
    return ({'value': np.array([0 if r is None else r['value'] for r in rows])},
            {'vid': [None if r is None else r['value'] for r in rows]})

  def collate(self, examples, length):
    return self.collate_rows(self.rows(examples), length)


class Record:
  def __init__(self, vid, value):
    self.vid, self.value = vid, value


def test_mixed_quality_splits():
  """HQ degrades nothing, LQ everything, mixed about the protocol's share, and a video's mixed
  draw is its LQ draw or clean; the draws do not depend on the epoch at evaluation and do
  in training."""
  protocol = dg.MixingProtocol(probability=0.5, kinds=('motion_blur', 'jpeg'))
  records = [Record(f'video{i}', i) for i in range(64)]

  def batch(split, epoch=0, per_epoch=False):
    adapter = data.MixedQualityData(ListAdapter(), data.split_protocol(protocol, split), seed=3,
                                    per_epoch=per_epoch)
    examples = [adapter.example(r, epoch=epoch, index=i) for i, r in enumerate(records)]
    return adapter.collate(examples + [None], 1)

  (hq, _), (lq, _), (mixed, meta) = batch('hq'), batch('lq'), batch('mixed')
  assert not hq['degrade_kind'].any() and lq['degrade_kind'][:-1].all()
  assert 16 < (mixed['degrade_kind'] > 0).sum() < 48
  degraded = mixed['degrade_kind'] > 0
  np.testing.assert_array_equal(mixed['degrade_kind'][degraded], lq['degrade_kind'][degraded])
  np.testing.assert_array_equal(mixed['degrade_severity'][degraded],
                                lq['degrade_severity'][degraded])
  np.testing.assert_array_equal(mixed['degrade_seed'], lq['degrade_seed'])
  assert meta['degradation'][-1] == 'clean' and mixed['value'][5] == 5
  np.testing.assert_array_equal(batch('mixed', epoch=4)[0]['degrade_kind'], mixed['degrade_kind'])
  assert not np.array_equal(batch('mixed', epoch=4, per_epoch=True)[0]['degrade_kind'],
                            batch('mixed', epoch=5, per_epoch=True)[0]['degrade_kind'])
  with pytest.raises(ValueError, match='h264'):
    data.MixedQualityData(ListAdapter(), dg.MixingProtocol(kinds=('h264',)), seed=0)


def test_test_halves_rows_carry_their_example_degradation():
  """With the official even/odd test halves each example is two rows; both rows carry the
  example's degradation, so each half of a video is degraded alike."""
  protocol = dg.MixingProtocol(probability=0.5, kinds=('motion_blur', 'jpeg'))
  records = [Record(f'video{i}', i) for i in range(8)]
  adapter = data.MixedQualityData(ListAdapter(halves=True), data.split_protocol(protocol, 'lq'),
                                  seed=3)
  examples = [adapter.example(r, epoch=0, index=i) for i, r in enumerate(records)] + [None]
  batch, meta = adapter.collate(examples, 1)
  assert batch['value'].shape == batch['degrade_kind'].shape == (18,)
  for name in ('degrade_kind', 'degrade_severity', 'degrade_seed'):
    np.testing.assert_array_equal(batch[name][0::2], batch[name][1::2])
    np.testing.assert_array_equal(batch[name][:-2:2], [e[name] for e in examples[:-1]])
  assert len(meta['degradation']) == 18


def test_base_checkpoint_is_the_only_start_and_foils_carry_no_bases():
  """Training may start only from nst.base_checkpoint (where the bases come from); the foils'
  frozen backbone holds no bases, and its encode degrades the frames and adds nothing else."""
  task = registry.get_task('nst')
  config = tiny_config()
  config.nst.base_checkpoint = '/runs/cgstvg_base'
  with pytest.raises(UserError, match='nst.base_checkpoint'):
    task.load_weights('/runs/another_base', config)
  lora = task.frozen_backbone(tiny_config('lora'))
  assert lora.params == {}
  frames = np.full((1, 2, 16, 16, 3), 128, np.uint8)
  batch = {'frames': frames, 'degrade_kind': np.array([dg.KINDS.index('gaussian_noise')]),
           'degrade_severity': np.array([5]), 'degrade_seed': np.array([1], np.uint32)}
  encoded = jax.jit(lora.encode)(lora.params, batch)
  assert set(encoded) == set(batch) and np.abs(np.asarray(encoded['frames']) - 128.0).mean() > 20


@pytest.mark.parametrize('name', ['hcstvg_v1', 'hcstvg_v2', 'vidstg', 'synthetic'])
def test_every_config_and_variant_resolves(name):
  """configs/nst/<name>.py and its foils: the task, the method, every point declared exact."""
  for arg in ('', 'lora', 'full', 'frozen'):
    config = configs.load(f'configs/nst/{name}.py:{arg}')
    nst = cgstvg.nst_config(config)
    assert config.task == 'nst' and nst.method == (arg or 'nst') and nst.points
    points = injection.resolve_points(CGSTVG(config), nst)
    assert all(p.consumers == 'exclusive' and not p.flagged for p in points)
