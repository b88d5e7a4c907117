"""jaxvg's LLaVA backends against Hugging Face transformers on tiny random models.

Fixtures: tests/fixtures/zeroshot_llava_fixtures.py (torch at fixture time only) saved each model
with `save_pretrained` and what torch computed: the visual tokens, logits at the answer position,
yes/no margins, the eager attention rows over the visual columns, and the gradient of the LRA loss
with respect to an additive visual prompt.
"""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.modules.llm import AttentionReadout
from jaxvg.projects.zeroshot import convert, pipeline, prompts
from jaxvg.projects.zeroshot.llava import Llava

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / 'fixtures'
BACKENDS = [('onevision', 'qwen_1_5'), ('nextvideo', 'vicuna_v1')]
ROWS = 6


def close(actual, expected, rtol=1e-4):
  """max |actual − expected| / max |expected| < rtol (error relative to the tensor's scale)."""
  actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
  assert actual.shape == expected.shape, (actual.shape, expected.shape)
  err = np.max(np.abs(actual - expected)) / np.max(np.abs(expected))
  assert err < rtol, f'relative error {err:.2e}'
  return err


@pytest.fixture(scope='module', params=BACKENDS, ids=[b for b, _ in BACKENDS])
def backend(request):
  name, template = request.param
  folder = FIXTURES / f'zeroshot_{name}'
  config, params = convert.load_weights(folder)
  ref = dict(np.load(folder / 'reference.npz'))
  return name, template, folder, config, params, ref


def test_visual_tokens(backend):
  _, _, _, config, params, ref = backend
  encode = jax.jit(lambda p, x: Llava(config).apply({'params': p}, x, method=Llava.encode_video))
  visual = encode(params, jnp.asarray(ref['pixels']))
  assert visual.shape == ref['visual'].shape
  close(visual, ref['visual'])


def test_prompt_ids_match_the_official_prompt_builder(backend):
  pytest.importorskip('tokenizers', reason='pinned in requirements.txt (pip install -r ...)')
  _, template, folder, *_, ref = backend
  tok = prompts.load_tokenizer(folder)
  questions = ['please describe this video', 'Is there the man in purple clothes in this video?',
               'Is there a woman who turns around and walks away in this video?',
               "Is there the man's dog, jumping (twice) in this video?", 'yes no Yes No']
  v = ref['visual'].shape[0]
  for qi, question in enumerate(questions):
    pre, post = prompts.encode_prompt(tok, template, question)
    np.testing.assert_array_equal(pre, ref[f'hf_pre_ids_{qi}'])
    np.testing.assert_array_equal(post, ref[f'hf_post_ids_{qi}'])
    # LLaVA-NeXT's conv_templates + tokenizer_image_token (IMAGE_TOKEN_INDEX = -200).
    np.testing.assert_array_equal(pre + [-200] + post, ref[f'official_ids_{qi}'])
    if qi < 2:  # the prompts the model ran on
      ids = ref[f'ids_{qi}']
      np.testing.assert_array_equal(ids[:len(pre)], pre)
      np.testing.assert_array_equal(ids[len(pre) + v:], post)
  assert prompts.token_id(tok, 'yes') == ref['yes_id']
  assert prompts.token_id(tok, 'no') == ref['no_id']


def test_logits_margins_attention_and_lra_gradient(backend):
  name, template, folder, config, params, ref = backend
  start = int(ref['visual_start_0'])
  visual = jnp.asarray(ref['visual'])
  num_visual = visual.shape[0]
  layers = tuple(range(config.decoder.num_layers))
  model = Llava(config, readout=AttentionReadout(layers, start, start + num_visual))
  lengths = np.array([len(ref['ids_0']), len(ref['ids_1'])])
  bucket = int(lengths.max()) + 3  # right padding must not change anything
  ids = np.zeros((2, bucket), np.int32)
  ids[0, :lengths[0]], ids[1, :lengths[1]] = ref['ids_0'], ref['ids_1']
  rows = lengths[:, None] + np.arange(-ROWS, 0)[None]

  def run(prompt):
    tokens = jnp.broadcast_to(visual + prompt, (2,) + visual.shape)
    embeds = model.apply({'params': params}, jnp.asarray(ids), tokens, start, method=Llava.splice)
    return model.apply({'params': params}, embeds, jnp.asarray(lengths - 1)[:, None],
                       jnp.asarray(rows), method=Llava.decode)

  yes, no = int(ref['yes_id']), int(ref['no_id'])  # the tokenizer's, checked above

  def loss(p):
    out = run(p)
    logits = out['logits'][:, 0]
    return pipeline.margin_loss(logits[:, yes] - logits[:, no]), out

  (value, out), grad = jax.jit(jax.value_and_grad(loss, has_aux=True))(jnp.asarray(ref['prompt']))
  errors = {}
  for qi in range(2):
    errors[f'logits_{qi}'] = close(out['logits'][qi, 0], ref[f'logits_{qi}'])
    errors[f'attention_{qi}'] = close(out['attention'][:, qi], ref[f'attention_{qi}'])
    margin = out['logits'][qi, 0, yes] - out['logits'][qi, 0, no]
    errors[f'margin_{qi}'] = close(margin, ref[f'margin_{qi}'])
  errors['loss'] = close(value, ref['loss'])
  errors['grad'] = close(grad, ref['grad'])
  print(name, {k: f'{v:.1e}' for k, v in errors.items()})
