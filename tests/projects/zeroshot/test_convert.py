"""Loading Hugging Face LLaVA folders: the three key styles, shards, and named errors."""
import json
import pathlib
import shutil

import jax
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from jaxvg.projects.zeroshot import convert

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / 'fixtures'
OV = FIXTURES / 'zeroshot_onevision'


def _style_b(key: str) -> str:
  for old, new in (('language_model.model.', 'model.language_model.'),
                   ('language_model.lm_head.', 'lm_head.'),
                   ('vision_tower.vision_model.', 'model.vision_tower.'),  # v5: no vision_model
                   ('multi_modal_projector.', 'model.multi_modal_projector.'),
                   ('image_newline', 'model.image_newline')):
    if key.startswith(old):
      return new + key[len(old):]
  return key


def _style_c(key: str) -> str:
  for old, new in (('language_model.model.', 'model.'), ('language_model.lm_head.', 'lm_head.'),
                   ('vision_tower.', 'model.vision_tower.vision_tower.'),
                   ('multi_modal_projector.linear_1.', 'model.mm_projector.0.'),
                   ('multi_modal_projector.linear_2.', 'model.mm_projector.2.'),
                   ('image_newline', 'model.image_newline')):
    if key.startswith(old):
      return new + key[len(old):]
  return key


@pytest.fixture(scope='module')
def reference():
  return convert.load_weights(OV)


def _write_renamed(folder: pathlib.Path, rename, drop: str | None = None,
                   reshape: str | None = None):
  shutil.copy(OV / 'config.json', folder / 'config.json')
  tensors = {}
  for shard in OV.glob('*.safetensors'):
    tensors.update(load_file(shard))
  out = {rename(k): v for k, v in tensors.items() if k != drop}
  if reshape:
    out[rename(reshape)] = out[rename(reshape)][..., :-1]
  save_file(out, str(folder / 'model.safetensors'))


@pytest.mark.parametrize('rename', [_style_b, _style_c], ids=['B', 'C'])
def test_key_styles_load_the_same_params(tmp_path, reference, rename):
  _write_renamed(tmp_path, rename)
  _, params = convert.load_weights(tmp_path)
  jax.tree.map(np.testing.assert_array_equal, params, reference[1])


def test_sharded_folder_reads_every_shard():
  index = json.loads((OV / 'model.safetensors.index.json').read_text())
  assert len(set(index['weight_map'].values())) > 1
  tensors = convert.read_safetensors_folder(OV)
  assert set(tensors) == set(index['weight_map'])


def test_missing_and_misshaped_keys_are_named(tmp_path):
  _write_renamed(tmp_path, lambda k: k, drop='language_model.model.layers.1.self_attn.k_proj.bias',
                 reshape='multi_modal_projector.linear_2.weight')
  with pytest.raises(convert.CheckpointError) as err:
    convert.load_weights(tmp_path)
  msg = str(err.value)
  assert 'missing language_model.model.layers.1.self_attn.k_proj.bias' in msg
  assert 'multi_modal_projector.linear_2.weight: shape (32, 31)' in msg


def test_original_llava_next_config_names_the_tower():
  cfg = {'architectures': ['LlavaQwenForCausalLM'], 'model_type': 'llava_qwen',
         'mm_vision_tower': 'google/siglip-so400m-patch14-384', 'mm_spatial_pool_stride': 5,
         'mm_spatial_pool_mode': 'bilinear', 'mm_newline_position': 'one_token',
         'mm_vision_select_layer': -2, 'vocab_size': 152064, 'hidden_size': 3584,
         'intermediate_size': 18944, 'num_hidden_layers': 28, 'num_attention_heads': 28,
         'num_key_value_heads': 4, 'rope_theta': 1e6, 'rms_norm_eps': 1e-6,
         'tie_word_embeddings': False}
  c = convert.config_from_hf(cfg)
  assert (c.vision.num_layers, c.vision_feature_layer, c.pooled_grid) == (26, -1, 6)
  assert c.decoder.qkv_bias and c.newline and c.num_visual_tokens(20) == 721
