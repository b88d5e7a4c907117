"""Official R²-Tuning checkpoint layout <-> jaxvg params."""
import numpy as np
import pytest

from jaxvg.projects.r2tuning import config as r2_config
from jaxvg.projects.r2tuning.convert import load_official, official_shapes, to_official

# The official key list of the QVHighlights checkpoint (module.loss._loss_sal.scale aside),
# each with the jaxvg param path it must land in and the layout change.
T2, T3 = 'linear', 'conv'


def _expected_mapping():
  m = {'coef': (('coef',), None), 'adapter.gate': (('adapter', 'gate'), None),
       'adapter.scale': (('adapter', 'scale'), None)}
  step = ('adapter', 'step')
  for name in ('video_map', 'query_map'):
    for idx, sub, kind in (('0', 'norm0', 'ln'), ('2', 'fc0', T2), ('4', 'norm1', 'ln'),
                           ('6', 'fc1', T2)):
      m[f'adapter.{name}.{idx}.weight'] = (step + (name, sub, 'scale' if kind == 'ln' else 'kernel'), kind)
      m[f'adapter.{name}.{idx}.bias'] = (step + (name, sub, 'bias'), None)
  for name in ('v_map', 'q_map'):
    m[f'adapter.{name}.weight'] = (step + (name, 'kernel'), T2)
    m[f'adapter.{name}.bias'] = (step + (name, 'bias'), None)
  for att in ('cross_att', 'self_att'):
    for p in 'qkvm':
      m[f'adapter.tem.{att}.{p}.weight'] = (step + ('tem', att, p, 'kernel'), T2)
      m[f'adapter.tem.{att}.{p}.bias'] = (step + ('tem', att, p, 'bias'), None)
  for norm in ('cross_att_norm', 'self_att_norm', 'ffn_norm'):
    m[f'adapter.tem.{norm}.weight'] = (step + ('tem', norm, 'scale'), 'ln')
    m[f'adapter.tem.{norm}.bias'] = (step + ('tem', norm, 'bias'), None)
  for idx, sub in (('0', 'fc0'), ('2', 'fc1')):
    m[f'adapter.tem.ffn.mapping.{idx}.weight'] = (step + ('tem', 'ffn', sub, 'kernel'), T2)
    m[f'adapter.tem.ffn.mapping.{idx}.bias'] = (step + ('tem', 'ffn', sub, 'bias'), None)
  for level, blocks in ((1, 1), (2, 2), (3, 3)):
    for j in range(blocks):
      conv, norm = ('pyramid', f'level{level}_conv{j}'), ('pyramid', f'level{level}_norm{j}')
      m[f'pyramid.blocks.{level}.{5 * j + 1}.weight'] = (conv + ('kernel',), T3)
      m[f'pyramid.blocks.{level}.{5 * j + 1}.bias'] = (conv + ('bias',), None)
      m[f'pyramid.blocks.{level}.{5 * j + 3}.weight'] = (norm + ('scale',), 'ln')
      m[f'pyramid.blocks.{level}.{5 * j + 3}.bias'] = (norm + ('bias',), None)
  m['pooling.att.weight'] = (('pooling', 'att', 'kernel'), T2)
  for head in ('class_head', 'coord_head'):
    for idx, sub in (('1', 'conv0'), ('3', 'conv1')):
      m[f'{head}.module.{idx}.weight'] = ((head, sub, 'kernel'), T3)
      m[f'{head}.module.{idx}.bias'] = ((head, sub, 'bias'), None)
  return m


EXPECTED = _expected_mapping()


def get(tree, path):
  for p in path:
    tree = tree[p]
  return tree


def to_flax(value, kind):
  return value.T if kind == T2 else np.transpose(value, (2, 1, 0)) if kind == T3 else value


def random_state_dict(config, seed=0):
  rng = np.random.default_rng(seed)
  state = {k: rng.normal(size=s).astype(np.float32) for k, s in official_shapes(config.model).items()}
  state['module.loss._loss_sal.scale'] = np.array([np.log(1 / 0.07)], np.float32)
  return state


def check_placement(state, params):
  """Every official tensor sits at its (hand-written) jaxvg path in the right layout."""
  for name, (path, kind) in EXPECTED.items():
    np.testing.assert_array_equal(get(params, path), to_flax(state[f'module.{name}'], kind),
                                  err_msg=name)


def test_key_list_and_shapes_match_the_official_checkpoint(shared):
  ref = {}
  for line in (shared / 'reference' / 'r2tuning_qvhighlights_state_dict.tsv').read_text().splitlines():
    key, shape = line.split('\t')
    ref[key] = tuple(int(x) for x in shape.strip('()').split(',') if x.strip())
  assert ref.pop('module.loss._loss_sal.scale') == (1,)
  assert official_shapes(r2_config.base().model) == ref


def test_hand_written_mapping_covers_every_key():
  assert {f'module.{k}' for k in EXPECTED} == set(official_shapes(r2_config.base().model))


def test_round_trip_places_every_tensor(tmp_path):
  c = r2_config.base()
  state = random_state_dict(c)
  params = load_official(state, c)
  check_placement(state, params)
  back = to_official(params)
  assert set(back) == set(state) - {'module.loss._loss_sal.scale'}
  for k, v in back.items():
    np.testing.assert_array_equal(v, state[k], err_msg=k)
  # File formats and wrappers: npz / safetensors, {'state_dict': ...}, keys without 'module.'.
  np.savez(tmp_path / 'ckpt.npz', **{k[len('module.'):]: v for k, v in state.items()})
  check_placement(state, load_official(tmp_path / 'ckpt.npz', c))
  from safetensors.numpy import save_file
  save_file(state, str(tmp_path / 'ckpt.safetensors'))
  check_placement(state, load_official(tmp_path / 'ckpt.safetensors', c))
  check_placement(state, load_official({'state_dict': state, 'meta': {'epoch': 3}}, c))


def test_swapped_key_or_wrong_transpose_is_caught():
  c = r2_config.base()
  state = random_state_dict(c)
  swapped = dict(state)
  swapped['module.adapter.tem.cross_att.q.weight'] = state['module.adapter.tem.cross_att.k.weight']
  swapped['module.adapter.tem.cross_att.k.weight'] = state['module.adapter.tem.cross_att.q.weight']
  with pytest.raises(AssertionError):
    check_placement(state, load_official(swapped, c))
  transposed = dict(state, **{'module.adapter.v_map.weight': state['module.adapter.v_map.weight'].T})
  with pytest.raises(AssertionError):
    check_placement(state, load_official(transposed, c))


def test_clear_errors_for_missing_unexpected_and_misshaped_keys():
  c = r2_config.base()
  state = random_state_dict(c)
  bad = dict(state)
  del bad['module.pooling.att.weight']
  bad['module.extra.weight'] = np.zeros(3, np.float32)
  bad['module.class_head.module.1.weight'] = np.zeros((256, 256, 2), np.float32)
  with pytest.raises(ValueError) as e:
    load_official(bad, c)
  msg = str(e.value)
  assert 'missing key: pooling.att.weight' in msg and 'unexpected key: extra.weight' in msg
  assert 'class_head.module.1.weight: (256, 256, 2), expected (256, 256, 3)' in msg


def test_tvsum_config_layout():
  c = r2_config.base()
  c.model.update(dict(use_tef=False, strides=(1,), use_coord_head=False, merge_cls_sal=False))
  shapes = official_shapes(c.model)
  assert shapes['module.adapter.video_map.0.weight'] == (768,)
  assert shapes['module.coef'] == (1,)
  assert not any('coord_head' in k or 'pyramid' in k for k in shapes)
  assert sum(int(np.prod(s)) for s in shapes.values()) == 1_846_281
  state = random_state_dict(c)
  assert set(to_official(load_official(state, c))) == set(shapes)
