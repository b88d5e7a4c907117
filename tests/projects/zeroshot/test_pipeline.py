"""The zero-shot grounder end to end on the tiny random OneVision backend (mechanics only)."""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.projects.zeroshot import convert, pipeline, prompts

FOLDER = pathlib.Path(__file__).resolve().parents[2] / 'fixtures' / 'zeroshot_onevision'
NUM_FRAMES = 4  # as configs/zeroshot/synthetic.py: test_runner reuses the compiled programs
SENTENCE = 'The man in purple clothes turns around and walks away.'


@pytest.fixture(scope='module')
def loaded():
  pytest.importorskip('tokenizers', reason='pinned in requirements.txt (pip install -r ...)')
  config, params = convert.load_weights(FOLDER)
  return config, params, prompts.load_tokenizer(FOLDER)


def grounder(loaded, **kw):
  config, params, tok = loaded
  # The tiny model has 3 layers: average all of them (the code's window is [-26:-6] of 32).
  g = pipeline.GroundingConfig(layers=(None, None), prompt_bucket=192, **kw)
  return pipeline.Grounder(pipeline.Backend.create(config, params, tok, g, NUM_FRAMES), g)


def frames(config, seed=0):
  size = config.vision.image_size
  return jax.random.normal(jax.random.key(seed), (NUM_FRAMES, size, size, 3))


def test_lra_step_raises_the_margin_it_optimises(loaded):
  gr = grounder(loaded, lra_steps=1)  # the paper's default: one step, lr 8, β 0.5
  visual = gr._encode(frames(loaded[0]))
  question = prompts.yes_no_question(SENTENCE)
  qs = [prompts.CAPTION_PROMPT, question]
  before = gr.margins(visual, jnp.zeros_like(visual), qs)
  after = gr.margins(visual, gr.tuned_prompt(visual, question), qs)
  gain = (after[1] - after[0]) - (before[1] - before[0])
  assert gain > 0, (before, after)


def test_lra_two_steps_follow_the_ema_recurrence():
  """As torch differentiates the code: V1 = −lr·∇L(0); at step 2 the loss is read at
  β·V1 + (1 − β)·V0 and ∂/∂V1 carries a factor β; the prompt read is β·V2 + (1 − β)·V1."""
  target = jnp.array([1.0, -2.0, 0.5])
  loss = lambda p: jnp.sum((p - target) ** 2 * jnp.array([1.0, 2.0, 3.0]))  # noqa: E731
  lr, beta = 0.1, 0.5
  grad = jax.grad(loss)
  v1 = -lr * grad(jnp.zeros(3))
  v2 = v1 - lr * beta * grad(beta * v1)
  got = pipeline.latent_reattention(loss, jnp.zeros(3), 2, lr, beta)
  np.testing.assert_allclose(got, beta * v2 + (1 - beta) * v1, rtol=1e-6)


def test_gti_reads_the_candidate_token_whose_map_peaks_highest(loaded):
  config = loaded[0]
  v = config.num_visual_tokens(NUM_FRAMES)
  att = np.full((2, 2, 4, 3, v), 0.01, np.float32)  # (layers, Q, H, R, V)
  att[:, 0, :, 1, 5] = 0.9  # candidate 1 peaks highest on the question
  att[:, 1, :, 1, 7] = 0.5
  maps = pipeline.grounding_map(jnp.asarray(att), config, NUM_FRAMES)
  np.testing.assert_allclose(np.asarray(maps).reshape(2, -1), att[0, :, 0, 1, :-1], rtol=1e-6)


def test_reverse_frames_keeps_the_newline_last():
  tokens = jnp.arange(2 * 4 + 1)[:, None].astype(jnp.float32)
  rev = pipeline.reverse_frames(tokens, 2, newline=True)[:, 0]
  np.testing.assert_array_equal(rev, [4, 5, 6, 7, 0, 1, 2, 3, 8])


@pytest.mark.parametrize('mode,tas', [('base', False), ('focus_attr', False), ('full', True)])
def test_ground_end_to_end(loaded, mode, tas, tmp_path):
  config = loaded[0]
  gti = (-6, -5, -4, -3, -2, -1) if mode == 'full' else ()  # as configs/zeroshot/synthetic.py
  gr = grounder(loaded, mode=mode, tas=tas, lra_steps=1, frames_thre=1, gti_tokens=gti)
  px = frames(config)
  # Tubes: track 1 covers the peak of the base map; the others cover one low corner each.
  base = grounder(loaded).branch_map(gr._encode(px), None, prompts.yes_no_question(SENTENCE))
  g = config.pooled_grid
  assert base.shape == (NUM_FRAMES, g, g) and np.all(np.isfinite(base))
  f, y, x = np.unravel_index(np.argmax(base), base.shape)
  size = 4 * g
  masks = np.zeros((3, NUM_FRAMES, size, size), np.float32)
  masks[1, :, 4 * y:4 * y + 4, 4 * x:4 * x + 4] = 1.0
  masks[0, :, :2, :2] = masks[2, :, -2:, -2:] = 1.0
  decomposition = {'decompose_attribute': ['the man in purple clothes'],
                   'decompose_action': ['The man turns around and walks away.']}
  (tmp_path / 'd.json').write_text(json.dumps({'v.mp4': decomposition}))
  entry = prompts.load_decompositions(tmp_path / 'd.json')['v.mp4']
  out = gr.ground(px, SENTENCE, masks, entry)
  assert out['spatial_map'].shape == (NUM_FRAMES, g, g)
  lo, hi = out['span']
  assert 0 <= lo <= hi < NUM_FRAMES and hi - lo + 1 <= 2
  if mode == 'base':
    assert out['track'] == 1
    np.testing.assert_allclose(out['spatial_map'], base, rtol=1e-5)


def test_sub_queries_fall_back_to_the_full_query():
  full = prompts.yes_no_question(SENTENCE)
  assert prompts.sub_queries(SENTENCE, None) == (full, full)
  entry = {'decompose_attribute': ['please describe this video'], 'decompose_action': ['He walks.']}
  assert prompts.sub_queries(SENTENCE, entry) == (full, 'Is there He walks in this video?')
