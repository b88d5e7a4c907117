"""Weight loading: torch archives read without torch, HF safetensors, arch inference, errors."""
import pathlib
import shutil
import zipfile

import jax
import numpy as np
import pytest
from safetensors.numpy import save_file

import clip_weights
import jaxvg.clip
from jaxvg.convert.clip import (infer_arch, openai_shapes, openai_to_params, read_state_dict,
                                read_torch_archive)
from jaxvg.modules.clip import CLIP_ARCHS, encode_text_layers, encode_video_layers

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / 'fixtures'
MICRO_SD = FIXTURES / 'clip_micro_sd.pt'
MICRO_JIT = FIXTURES / 'clip_micro_jit.pt'


def all_layers(model, params, arch, seed=0):
  frames = clip_weights.frames(arch, seed)
  tokens = clip_weights.token_ids(arch, seed)
  vision = jax.jit(lambda p: encode_video_layers(model, p, frames, arch.vision_layers + 1))(params)
  text = jax.jit(lambda p: encode_text_layers(model, p, tokens, arch.text_layers + 1))(params)
  return np.asarray(vision), np.swapaxes(np.asarray(text), 1, 2)


def assert_same_tree(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_torch_state_dict_reads_like_torch_wrote_it():
  """fp16 storages and a strided (non-contiguous) tensor come back with torch's values."""
  state = read_torch_archive(MICRO_SD)
  expected = clip_weights.openai_state_dict(clip_weights.MICRO, 0)
  assert set(expected) <= set(state)
  assert state['logit_scale'].shape == ()
  for key, value in expected.items():
    assert state[key].dtype == np.float16, key
    np.testing.assert_array_equal(state[key], value.astype(np.float16), err_msg=key)


@pytest.mark.parametrize('path', [MICRO_SD, MICRO_JIT], ids=['state_dict', 'torchscript'])
def test_micro_archives_load_and_match_torch_outputs(path):
  model, params = jaxvg.clip.load(path)
  arch = model.arch
  assert (arch.vision_width, arch.vision_heads, arch.image_size, arch.vocab_size) == (64, 1, 16, 100)
  vision, text = all_layers(model, params, arch)
  ref = np.load(FIXTURES / 'clip_micro_ref.npz')
  np.testing.assert_allclose(vision, ref['vision'], rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(text, ref['text'], rtol=1e-4, atol=1e-4)


def test_torchscript_and_state_dict_give_the_same_params():
  assert_same_tree(jaxvg.clip.load(MICRO_SD)[1], jaxvg.clip.load(MICRO_JIT)[1])


@pytest.fixture(scope='module')
def tiny_state():
  return clip_weights.openai_state_dict(CLIP_ARCHS['tiny'], 5)


def test_hf_safetensors_maps_to_the_openai_params(tiny_state, tmp_path):
  save_file(clip_weights.hf_state_dict(tiny_state), str(tmp_path / 'model.safetensors'))
  model, params = jaxvg.clip.load(tmp_path)  # an HF model directory
  assert model.arch.name == 'tiny'
  assert_same_tree(params, openai_to_params(tiny_state, CLIP_ARCHS['tiny']))


def test_hf_layout_of_an_inferred_custom_arch(tmp_path):
  """HF names of the micro weights (an arch outside the table) load like the OpenAI file."""
  hf = clip_weights.hf_state_dict({k: v.astype(np.float32)
                                   for k, v in read_torch_archive(MICRO_SD).items()})
  save_file(hf, str(tmp_path / 'm.safetensors'))
  _, from_hf = jaxvg.clip.load(tmp_path / 'm.safetensors')
  assert_same_tree(from_hf, jaxvg.clip.load(MICRO_SD)[1])


def test_arch_inference_for_the_released_shapes():
  for name in ('ViT-B/32', 'ViT-B/16', 'ViT-L/14', 'ViT-L/14-336', 'tiny'):
    shapes = openai_shapes(CLIP_ARCHS[name])
    state = {k: np.broadcast_to(np.float32(0), s) for k, s in shapes.items()}
    assert infer_arch(state) == CLIP_ARCHS[name]


def test_missing_key_is_named(tiny_state, tmp_path):
  state = dict(tiny_state)
  del state['visual.transformer.resblocks.2.mlp.c_fc.bias']
  with pytest.raises(KeyError, match=r'visual\.transformer\.resblocks\.2\.mlp\.c_fc\.bias'):
    openai_to_params(state, CLIP_ARCHS['tiny'])
  hf = clip_weights.hf_state_dict(tiny_state)
  del hf['text_model.encoder.layers.1.self_attn.k_proj.weight']
  save_file(hf, str(tmp_path / 'model.safetensors'))
  with pytest.raises(KeyError, match=r'text_model\.encoder\.layers\.1\.self_attn\.k_proj\.weight'):
    jaxvg.clip.load(tmp_path / 'model.safetensors')


def test_transposed_key_is_named(tiny_state, tmp_path):
  state = dict(tiny_state, **{'visual.proj': tiny_state['visual.proj'].T})
  with pytest.raises(ValueError, match=r"'visual\.proj' has shape \(32, 64\), expected \(64, 32\)"):
    openai_to_params(state, CLIP_ARCHS['tiny'])
  hf = clip_weights.hf_state_dict(tiny_state)
  hf['text_projection.weight'] = np.ascontiguousarray(hf['text_projection.weight'].T)
  save_file(hf, str(tmp_path / 'model.safetensors'))
  with pytest.raises(ValueError, match=r"'text_projection\.weight' has shape"):
    jaxvg.clip.load(tmp_path / 'model.safetensors', arch='tiny')


def test_wrong_arch_is_reported_with_the_key(tiny_state):
  with pytest.raises(ValueError, match=r"'visual\.class_embedding'.*ViT-B/32"):
    openai_to_params(tiny_state, CLIP_ARCHS['ViT-B/32'])


def test_truncated_files_raise_naming_the_file(tmp_path):
  data = MICRO_SD.read_bytes()
  cut = tmp_path / 'cut.pt'
  cut.write_bytes(data[:len(data) // 2])
  with pytest.raises(ValueError, match='cut.pt'):
    read_state_dict(cut)
  st = tmp_path / 'cut.safetensors'
  save_file({'a': np.zeros((100, 100), np.float32)}, str(st))
  st.write_bytes(st.read_bytes()[:5000])
  with pytest.raises(ValueError, match='cut.safetensors'):
    read_state_dict(st)


def test_short_storage_names_the_tensor(tmp_path):
  """An archive whose central directory is intact but one storage is short."""
  bad = tmp_path / 'short.pt'
  with zipfile.ZipFile(MICRO_SD) as src, zipfile.ZipFile(bad, 'w') as dst:
    for info in src.infolist():
      payload = src.read(info)
      if info.filename.endswith('/data/0'):
        payload = payload[:8]
      dst.writestr(info, payload)
  with pytest.raises(ValueError, match=r"tensor '[\w.]+': storage data/0 is truncated"):
    read_torch_archive(bad)


def test_unknown_pickled_objects_are_refused(tmp_path):
  import pickle
  bad = tmp_path / 'evil.pt'
  with zipfile.ZipFile(bad, 'w') as z:
    z.writestr('evil/data.pkl', pickle.dumps({'x': shutil.rmtree}))
  with pytest.raises(pickle.UnpicklingError, match='shutil.rmtree'):
    read_torch_archive(bad)
