"""A frozen text tower (`model.text.frozen`): `prepare features cgstvg` caches RoBERTa's states of
every query beside the C5 maps, and training and evaluation from the cache equal those from
frames and tokens."""
import functools
import json
import pathlib

import jax
import numpy as np
import pytest

from jaxvg import configs
from jaxvg.data import frames as frames_lib
from jaxvg.data.tube_examples import TubeData
from jaxvg.data.tube_features import CachedTubeData, TextStateCache
from jaxvg.errors import UserError
from jaxvg.prepare import cgstvg_features
from jaxvg.projects.cgstvg.losses import loss_fn
from jaxvg.projects.cgstvg.model import CGSTVG, dummy_batch
from jaxvg.projects.cgstvg.optim import trainable_count

TOKENIZER = pathlib.Path(__file__).parents[2] / 'fixtures' / 'roberta_tokenizer'
CONFIG = '''
from configs.cgstvg import synthetic


def get_config(arg=''):
  c = synthetic.get_config('tiny')
  c.data.dataset, c.data.anno_dir, c.data.val_split = 'hcstvg', {anno!r}, 'test'
  c.data.tokenizer = {tokenizer!r}
  c.data.height, c.data.width = 64, 64
  c.data.flip_prob = 0.0
  c.model.text.vocab_size = 400
  c.model.text.frozen = {frozen}
  return c
'''
# video -> (frames, caption, split); frames 64 x 64 at raw ids 0, 4, 8, ...
VIDEOS = {'a': (6, 'the man on the left walks away', 'train'),
          'b': (5, 'a woman in red sits down', 'test')}


def write_config(root, frozen):
  path = root / f'config_{frozen}.py'
  path.write_text(CONFIG.format(anno=str(root / 'anno'), tokenizer=str(TOKENIZER),
                                frozen=frozen))
  return configs.load(str(path)), str(path)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp('cgstvg_text')
  frames_dir, rng = str(root / 'frames'), np.random.default_rng(0)
  annotations = {'train': {}, 'test': {}}
  for key, (t, caption, split) in VIDEOS.items():
    frames_lib.write_video(frames_dir, key, rng.integers(0, 256, (t, 64, 64, 3), np.uint8), 1.0,
                           'raw', frame_ids=np.arange(t) * 4)
    annotations[split][f'{key}.mp4'] = {
        'bbox': [[8, 8, 30, 40]] * 10, 'st_frame': 5, 'img_num': 4 * t, 'caption': caption,
        'width': 64, 'height': 64}
  frames_lib.build_index(frames_dir)
  (root / 'anno').mkdir()
  for split, content in annotations.items():
    (root / 'anno' / f'{split}.json').write_text(json.dumps(content))
  config, config_path = write_config(root, True)
  out = str(root / 'features')
  status = cgstvg_features.main(['--config', config_path, '--frames', frames_dir, '--out', out,
                                 '--random', '--chunk', '8'])
  with config.unlocked():
    config.data.frames_dir = frames_dir
  return dict(root=root, config=config, out=out, status=status)


def cached_config(config, out):
  c = config.copy_and_resolve_references()
  c.data.features_dir = out
  return c


# Compile fast, run slow: the cost of these tests is XLA compiling the model.
FAST_COMPILE = {'xla_backend_optimization_level': 0, 'xla_llvm_disable_expensive_passes': True}


def params_of(config):
  """Random model parameters whose ResNet and RoBERTa are the cache's (seeded) towers."""
  init = jax.jit(CGSTVG(config).init, compiler_options=FAST_COMPILE)
  params = init(jax.random.key(1), dummy_batch(config, 1))['params']
  resnet, _ = cgstvg_features.frozen_params(config, '', '')
  return {**params, 'resnet': resnet, 'roberta': cgstvg_features.text_params(config, '')}


def one_batch(data, records):
  examples = [data.example(r, epoch=0, index=i) for i, r in enumerate(records)]
  return data.collate(examples, max(data.length(r) for r in records))


def test_every_query_is_cached(setup):
  assert setup['status'] == 0
  data = TubeData.from_config(setup['config'], train=False, seed=0)
  cache = TextStateCache(setup['out'])
  for _, caption, _ in VIDEOS.values():
    tokens = data.tokenizer.encode(caption)
    assert cache.states(tokens).shape == (len(tokens), setup['config'].model.text.hidden)
  with pytest.raises(ValueError, match='no cached text states'):
    cache.states(data.tokenizer.encode('a query nobody cached'))


def test_training_and_evaluation_from_the_cache_equal_frames_and_tokens(setup):
  from jaxvg.data.pipeline import load_records
  config, cached = setup['config'], cached_config(setup['config'], setup['out'])
  records = [r for split in ('train', 'test') for r in load_records(config, split, train=False)]
  for train in (False, True):    # the same sampling (temporal crop) from frames and from cache
    (frames_batch, frames_meta), (cache_batch, cache_meta) = (
        one_batch(source.from_config(c, train=train, seed=3), records)
        for source, c in ((TubeData, config), (CachedTubeData, cached)))
    np.testing.assert_array_equal(frames_meta['frame_ids'], cache_meta['frame_ids'])
  assert 'text_states' in cache_batch and 'frames' not in cache_batch
  del cache_batch['tokens']          # the model must read the cached states, not run the tower
  model, params = CGSTVG(config), params_of(config)

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
  def outputs_and_loss(batch):
    evaluated = model.apply({'params': params}, batch)
    trained = model.apply({'params': params}, batch, train=True,
                          rngs={'dropout': jax.random.key(2)})
    return evaluated, trained, loss_fn(trained, batch, config)[0]

  from_frames, from_cache = outputs_and_loss(frames_batch), outputs_and_loss(cache_batch)
  real = frames_batch['frame_mask']                    # padded frames differ (zeros vs C5 of 0)
  for mode, frames_out, cache_out in zip(('eval', 'train'), from_frames, from_cache):
    for key in ('boxes', 'sted', 'actioness', 'conf'):
      np.testing.assert_allclose(cache_out[key][:, real], frames_out[key][:, real], rtol=2e-3,
                                 atol=2e-3, err_msg=f'{mode} {key}')   # float16 cache
  np.testing.assert_allclose(from_cache[2], from_frames[2], rtol=1e-4)


def test_frozen_text_tower_is_frozen_and_required_by_the_cache(setup):
  frozen = setup['config']
  trained, _ = write_config(setup['root'], False)
  shapes = jax.eval_shape(lambda: CGSTVG(frozen).init(jax.random.key(0),
                                                      dummy_batch(frozen, 1)))['params']
  roberta = sum(x.size for x in jax.tree.leaves(shapes['roberta']))
  assert trainable_count(trained, shapes) - trainable_count(frozen, shapes) == roberta
  # a trained tower reads tokens, never the cache's states
  assert CachedTubeData.from_config(cached_config(trained, setup['out']), train=False,
                                    seed=0).text is None
  flipping = cached_config(frozen, setup['out'])
  flipping.data.flip_prob = 0.5
  with pytest.raises(UserError, match='flip'):
    CachedTubeData.from_config(flipping, train=True, seed=0)
