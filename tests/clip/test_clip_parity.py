"""Flax CLIP towers vs the PyTorch references (OpenAI clip.model, checked against HF CLIPModel)."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import clip_weights
from jaxvg.convert.clip import openai_to_params
from jaxvg.modules.clip import CLIP, CLIP_ARCHS, encode_text_layers, encode_video_layers

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / 'fixtures'


@pytest.fixture(scope='module')
def reference():
  return dict(np.load(FIXTURES / 'clip_parity.npz'))


def rel_err(actual, expected):
  actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
  return np.abs(actual - expected).max() / np.abs(expected).max()


def video_fn(model, num_layers=4):
  return jax.jit(lambda p, f: encode_video_layers(model, p, f, num_layers))


def text_fn(model, num_layers=4):
  return jax.jit(lambda p, t: encode_text_layers(model, p, t, num_layers))


def build(name, seed, dtype=jnp.float32):
  arch = CLIP_ARCHS[name]
  params = openai_to_params(clip_weights.openai_state_dict(arch, seed), arch)
  return arch, CLIP(arch, dtype), params


@pytest.mark.parametrize('name,key', [('tiny', 'tiny'), ('ViT-B/32', 'vitb32')])
def test_every_layer_matches_openai(reference, name, key):
  seed = int(reference['seed'])
  arch, model, params = build(name, seed)
  frames = clip_weights.frames(arch, seed)
  tokens = clip_weights.token_ids(arch, seed)
  vision = video_fn(model, arch.vision_layers + 1)(params, frames)
  text = text_fn(model, arch.text_layers + 1)(params, tokens)
  assert vision.shape == (2, arch.vision_layers + 1, arch.num_tokens, arch.vision_width)
  assert text.shape == (2, 77, arch.text_layers + 1, arch.text_width)
  text = np.swapaxes(np.asarray(text), 1, 2)[:, :, :int(reference['text_keep'])]
  vision = np.asarray(vision)
  if name == 'ViT-B/32':
    stride = int(reference['b32_channel_stride'])
    vision = vision[:, :, reference['b32_tokens_keep'], ::stride]
    text = text[..., ::stride]
  for layer in range(arch.vision_layers + 1):
    assert rel_err(vision[:, layer], reference[f'{key}_vision'][:, layer]) < 1e-4, layer
  for layer in range(arch.text_layers + 1):
    assert rel_err(text[:, layer], reference[f'{key}_text'][:, layer]) < 1e-4, layer

  pixels = (frames / 255.0 - np.array([0.48145466, 0.4578275, 0.40821073])) / np.array(
      [0.26862954, 0.26130258, 0.27577711])
  image_embeds, text_embeds = jax.jit(model.apply)({'params': params}, pixels, tokens)
  assert rel_err(image_embeds, reference[f'{key}_image_embeds']) < 1e-4
  assert rel_err(text_embeds, reference[f'{key}_text_embeds']) < 1e-4


def test_last_k_selection_is_the_tail_of_all_layers():
  arch, model, params = build('tiny', 1)
  frames = clip_weights.frames(arch, 1)
  tokens = clip_weights.token_ids(arch, 1)
  every = video_fn(model, arch.vision_layers + 1)(params, frames)
  np.testing.assert_array_equal(video_fn(model, 2)(params, frames), every[:, -2:])
  every_text = text_fn(model, arch.text_layers + 1)(params, tokens)
  np.testing.assert_array_equal(text_fn(model, 3)(params, tokens), every_text[:, :, -3:])


def test_text_tokens_do_not_see_the_padding():
  """Causal mask: features up to EOT are unchanged by whatever follows it."""
  arch, model, params = build('tiny', 2)
  tokens = clip_weights.token_ids(arch, 2)
  noisy = tokens.copy()
  noisy[:, 20:] = np.random.default_rng(0).integers(1, 1000, noisy[:, 20:].shape)
  encode = text_fn(model)
  a, b = encode(params, tokens), encode(params, noisy)
  np.testing.assert_allclose(a[:, :20], b[:, :20], rtol=1e-6, atol=1e-6)
  assert not np.allclose(a[:, 20:], b[:, 20:])


def test_bf16_compute_stays_close_to_fp32():
  arch, model32, params = build('tiny', 3)
  model16 = CLIP(arch, jnp.bfloat16)
  frames = clip_weights.frames(arch, 3)
  ref = video_fn(model32)(params, frames)
  out = video_fn(model16)(params, frames)
  assert out.dtype == jnp.bfloat16
  assert rel_err(out, ref) < 5e-2


def test_frozen_functions_pass_no_gradient_to_clip_params():
  arch, model, params = build('tiny', 4)
  frames = clip_weights.frames(arch, 4)
  grads = jax.jit(jax.grad(lambda p: encode_video_layers(model, p, frames).sum()))(params)
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads))
