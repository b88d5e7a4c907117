"""CG-STVG key mapping and sizes against the official state-dict listing
(shared/reference/cgstvg_hcstvg_state_dict.tsv) and a real .pth written in the official layout."""
import pathlib

import jax
import numpy as np
import pytest

from configs.cgstvg import hcstvg_v1, synthetic
import cgstvg_seeded as seeded
from jaxvg.projects.cgstvg.config import base_config
from jaxvg.projects.cgstvg.convert import (from_official, is_ignored, official_shapes,
                                           read_checkpoint, to_official)
from jaxvg.projects.cgstvg.model import CGSTVG, dummy_batch
from jaxvg.projects.cgstvg.optim import label_of, trainable_count

FIXTURES = pathlib.Path(__file__).parents[2] / 'fixtures'
OFFICIAL_TRAINABLE = 210_701_081
NEVER_CALLED_TRAINABLE = 10_130_436


def read_tsv(shared):
  rows = []
  for line in (shared / 'reference' / 'cgstvg_hcstvg_state_dict.tsv').read_text().splitlines():
    if line.startswith('#') or line.startswith('key\t'):
      continue
    key, shape, dtype, kind, _, group, used, shared_with, numel = line.split('\t')
    rows.append(dict(key=key, shape=tuple(int(n) for n in shape.split('x')), kind=kind,
                     group=group, used=used, alias=shared_with, numel=int(numel)))
  return rows


@pytest.fixture(scope='module')
def full_shapes():
  return official_shapes(hcstvg_v1.get_config())


def test_every_official_key_is_mapped_or_ignored(shared, full_shapes):
  rows = read_tsv(shared)
  keys = {r['key']: r for r in rows}
  for key, shape in full_shapes.items():
    assert key in keys, f'{key} is not an official key'
    assert keys[key]['shape'] == shape, (key, keys[key]['shape'], shape)
  unmapped = [k for k in keys if k not in full_shapes]
  assert all(is_ignored(k) for k in unmapped), [k for k in unmapped if not is_ignored(k)]
  # every ignored trainable key is one the official model never calls (or a shared alias)
  for key in unmapped:
    r = keys[key]
    assert r['kind'] != 'trainable' or r['used'] == 'NO' or r['alias'], key
  # and every never-called trainable key is ignored
  assert all(r['key'] not in full_shapes for r in rows if r['used'] == 'NO')


def test_trainable_parameter_count_matches_official(shared):
  config = hcstvg_v1.get_config()
  shapes = jax.eval_shape(lambda: CGSTVG(config).init(jax.random.key(0), dummy_batch(config, 1)))
  count = trainable_count(config, shapes['params'])
  assert count == OFFICIAL_TRAINABLE - NEVER_CALLED_TRAINABLE == 200_570_645
  rows = read_tsv(shared)   # the groups agree with the official optimiser's, key by key
  for r in rows:
    if r['kind'] == 'trainable' and not r['alias'] and r['used'] != 'NO':
      group = {'rest(BASE_LR)': 'base', 'vis_encoder(VIS_BACKBONE_LR)': 'backbone',
               'text_encoder(TEXT_LR)': 'text', 'time_decoder(TEMP_LR)': 'temporal'}[r['group']]
      assert label_of(r['key'], config) == group, r['key']
    if r['kind'] in ('frozen', 'buffer') and r['key'].startswith('vis_encoder'):
      assert label_of(r['key'], config) == 'frozen', r['key']


def tiny_config():
  c = synthetic.get_config()
  c.model.use_swin = True
  c.model.resnet_dilation = False   # the official Video-Swin-T's stride-32 grid
  c.model.swin_weights = ''
  c.model.swin_tower = base_config().model.swin_tower
  c.model.swin_dims = 768
  return c


def test_tiny_round_trip():
  """Random arrays of every official shape -> jaxvg -> official: identical; a wrong shape and a
  missing key are named."""
  config = tiny_config()
  rng = np.random.default_rng(0)
  state = {k: rng.standard_normal(s).astype(np.float32)
           for k, s in official_shapes(config).items()}
  state['ground_encoder.encoder.temporal_layers.0.linear1.weight'] = np.zeros((64, 256), np.float32)
  variables, ignored = from_official(state, config)
  assert ignored == ['ground_encoder.encoder.temporal_layers.0.linear1.weight']
  back = to_official(variables)
  for key, value in state.items():
    if key not in ignored:
      np.testing.assert_array_equal(back[key], value, err_msg=key)
  assert back['ground_decoder.decoder.bbox_embed.layers.0.weight'] is not None  # alias written


  bad = dict(state)
  bad['input_proj.weight'] = np.zeros((256, 2048), np.float32)
  del bad['temp_embed.layers.0.bias']
  with pytest.raises(ValueError) as err:
    from_official(bad, config)
  assert 'wrong shape: input_proj.weight' in str(err.value)
  assert 'missing key: temp_embed.layers.0.bias' in str(err.value)


def test_reads_official_pth_without_torch():
  """A .pth written by torch.save in the released layout ({'model', 'model_ema', 'iteration'}):
  the EMA weights are the ones read, 'module.' prefixes dropped."""
  state = read_checkpoint(FIXTURES / 'cgstvg_official_heads.pth')
  assert set(state) == {'ground_decoder.pos_fc.2.weight', 'ground_decoder.pos_fc.2.bias',
                        'action_embed.layers.1.bias', 'ground_decoder.time_embed2.layers.1.bias'}
  for key, value in state.items():
    np.testing.assert_array_equal(value, seeded.seeded_array('ema.' + key, value.shape))
  raw = read_checkpoint(FIXTURES / 'cgstvg_official_heads.pth', use_ema=False)
  np.testing.assert_array_equal(raw['ground_decoder.pos_fc.2.bias'],
                                seeded.seeded_array('ground_decoder.pos_fc.2.bias', (4,)))

