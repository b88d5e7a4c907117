"""Parity with the official CG-STVG code (HengLan/CGSTVG f062d84): the same seeded weights, in
the official state-dict layout, and the same frames and text through both; every intermediate
within 1e-4 relative. Fixture: tests/fixtures/cgstvg_official_fixtures.py."""
import functools
import pathlib

import jax
import numpy as np
import pytest

import cgstvg_seeded as seeded
from jaxvg.projects.cgstvg.config import base_config
from jaxvg.projects.cgstvg.convert import ALIASES, from_official
from jaxvg.projects.cgstvg.losses import loss_fn
from jaxvg.projects.cgstvg.model import CGSTVG

FIXTURE = pathlib.Path(__file__).parents[2] / 'fixtures' / 'cgstvg_official_tiny.npz'
TOL = 1e-4


def parity_config():
  """The fixture's official config: hcstvg.yaml with ENC_LAYERS 2, DEC_LAYERS 3, FFN_DIM 64,
  resnet50 and a tiny RoBERTa, the Swin branch on."""
  c = base_config()
  m = c.model
  m.resnet, m.enc_layers, m.dec_layers, m.ffn_dims = 'resnet50', 2, 3, 64
  m.text.vocab_size, m.text.hidden, m.text.layers, m.text.heads = 100, 32, 2, 4
  m.text.intermediate, m.text.max_positions = 64, 40
  return c


def rel_diff(ours, official):
  ours, official = np.asarray(ours, np.float64), np.asarray(official, np.float64)
  assert ours.shape == official.shape, (ours.shape, official.shape)
  return float(np.abs(ours - official).max() / max(np.abs(official).max(), 1e-12))


@pytest.fixture(scope='module')
def fixture():
  with np.load(FIXTURE) as f:
    return dict(f)


@pytest.fixture(scope='module')
def variables(fixture):
  shapes = {k: tuple(int(n) for n in s.split(',') if n)
            for k, s in zip(fixture['meta/keys'], fixture['meta/shapes'])}
  state = seeded.seeded_state(shapes)
  state.update({k[len('override/'):]: v for k, v in fixture.items() if k.startswith('override/')})
  for alias, main in ALIASES.items():   # one tensor under two names, as in a real checkpoint
    state.update({k: state[main + k[len(alias):]] for k in state if k.startswith(alias)})
  variables, ignored = from_official(state, parity_config())
  assert any(k.startswith('ground_encoder.encoder.temporal_layers.') for k in ignored)
  assert not any(k.startswith(('vis_encoder.', 'ground_decoder.decoder.layers.1.ca2.attention'))
                 for k in ignored)
  return variables


def inputs(with_targets=None):
  batch = {'frames': seeded.frames().transpose(0, 2, 3, 1)[None],
           'swin': seeded.swin_features().transpose(0, 2, 3, 1)[None],
           'tokens': np.array([seeded.TEXT_IDS], np.int32),
           'text_mask': np.ones((1, len(seeded.TEXT_IDS)), bool),
           'frame_mask': np.ones((1, seeded.FRAMES), bool)}
  if with_targets is not None:
    boxes = np.zeros((1, seeded.FRAMES, 4), np.float32)
    boxes[0, 1:4] = with_targets
    batch['boxes'] = boxes
    batch['box_mask'] = batch['in_span'] = np.array([[False, True, True, True]])
  return batch


@functools.partial(jax.jit, static_argnames='gt_context')
def apply(variables, batch, gt_context):
  return CGSTVG(parity_config()).apply(variables, batch, train=False, gt_context=gt_context,
                                       mutable=['intermediates'])


def run(variables, batch, gt_context):
  out, state = apply(variables, batch, gt_context)
  inter = {k: v[0] for k, v in state['intermediates'].items()}
  return out, inter


def compare(fixture, prefix, out, inter):
  pairs = {
      'encoded': (inter['encoded'][0], fixture[f'{prefix}/encoded']),
      'frames_cls': (inter['frames_cls'][0], fixture[f'{prefix}/frames_cls']),
      'anchors': (out['boxes'][:, 0], fixture[f'{prefix}/anchors']),
      'conf': (out['conf'][:, 0], fixture[f'{prefix}/conf']),
      'time_hidden': (inter['time_hidden'][:, 0], fixture[f'{prefix}/time_hidden']),
      'sted': (out['sted'][:, 0], fixture[f'{prefix}/sted']),
      'actioness': (out['actioness'][:, 0], fixture[f'{prefix}/actioness']),
  }
  diffs = {name: rel_diff(*pair) for name, pair in pairs.items()}
  print(prefix, {k: f'{v:.1e}' for k, v in diffs.items()})
  return diffs


@pytest.fixture(scope='module')
def eval_run(variables):
  return run(variables, inputs(), gt_context=False)


@pytest.fixture(scope='module')
def train_run(variables, fixture):
  return run(variables, inputs(fixture['train/gt_boxes']), gt_context=True)


def test_inference_matches_official(fixture, eval_run):
  """Confidence-driven context; the batch carries no targets at all (so eval cannot read them:
  the official decoder's gt_info(targets) at inference does not affect its outputs)."""
  out, inter = eval_run
  c5 = fixture['eval/c5'].transpose(0, 2, 3, 1)
  diffs = compare(fixture, 'eval', out, inter)
  diffs['c5'] = rel_diff(inter['c5'][0], c5)
  print('c5', f"{diffs['c5']:.1e}")
  assert max(diffs.values()) < TOL, diffs


def test_training_context_matches_official(fixture, train_run):
  """Ground-truth context (the official training branch), dropout off."""
  out, inter = train_run
  diffs = compare(fixture, 'train', out, inter)
  assert max(diffs.values()) < TOL, diffs
  # the two branches chose different context, so the later layers' boxes differ
  assert np.abs(fixture['train/anchors'][-1] - fixture['eval/anchors'][-1]).max() > 1e-4


def test_loss_terms_match_official(fixture, train_run):
  out, _ = train_run
  total, terms = jax.jit(lambda o, b: loss_fn(o, b, parity_config()))(
      out, inputs(fixture['train/gt_boxes']))
  official = {k[len('loss/'):]: float(v) for k, v in fixture.items() if k.startswith('loss/')}
  assert set(terms) | {'total'} == set(official)
  terms['total'] = total
  diffs = {k: abs(float(terms[k]) - v) / abs(v) for k, v in official.items()}
  print('loss', {k: f'{v:.1e}' for k, v in diffs.items()})
  assert max(diffs.values()) < TOL, diffs


def test_padding_is_invisible(variables, eval_run):
  """The last frame and text token marked padding: what the padded slots hold does not change
  any output of the valid frames (same shapes as above: no new compile)."""
  outputs = []
  for fill in (0.0, 3.0):
    batch = inputs()
    batch['frame_mask'][0, -1] = False
    batch['text_mask'][0, -2] = False
    batch['frames'][0, -1] = fill
    batch['swin'][0, -1] = -fill
    batch['tokens'][0, -2] = 5 + int(fill)
    outputs.append(run(variables, batch, gt_context=False)[0])
  for key in ('boxes', 'conf', 'sted', 'actioness'):
    np.testing.assert_allclose(outputs[0][key][:, :, :-1], outputs[1][key][:, :, :-1],
                               rtol=1e-5, atol=1e-6, err_msg=key)
  # and the padding did change something: the valid frames no longer see that frame and token
  assert np.abs(outputs[0]['boxes'][:, :, :-1] - eval_run[0]['boxes'][:, :, :-1]).max() > 1e-6
