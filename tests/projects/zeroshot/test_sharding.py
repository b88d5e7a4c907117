"""Tensor-parallel + FSDP LLaVA on 8 fake CPU devices reproduces the single-device results.

The single-device forward is pinned to transformers' within ~1e-6 (test_llava_parity.py); the
sharded one is held to the same reference here, which saves compiling the forward twice.
"""
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxvg.modules.llm import AttentionReadout
from jaxvg.projects.zeroshot import convert, sharding
from jaxvg.projects.zeroshot.llava import Llava
from jaxvg.train import mesh as mesh_lib

OV = pathlib.Path(__file__).resolve().parents[2] / 'fixtures' / 'zeroshot_onevision'


def test_sharded_forward_equals_single_device():
  if jax.device_count() < 8:
    pytest.skip('needs 8 devices (tests/conftest.py sets --xla_force_host_platform_device_count=8)')
  config, params = convert.load_weights(OV)
  ref = np.load(OV / 'reference.npz')
  start, v = int(ref['visual_start_1']), config.num_visual_tokens(2)
  layers = tuple(range(config.decoder.num_layers))
  model = Llava(config, readout=AttentionReadout(layers, start, start + v))
  ids = jnp.asarray(ref['ids_1'])[None].repeat(2, 0)  # batch 2: split over `data`
  n = ids.shape[1]
  rows = jnp.broadcast_to(jnp.arange(n - 6, n), (2, 6))
  mesh = mesh_lib.make_mesh(ml_collections.ConfigDict({'data': 2, 'model': 4}))
  params = jax.device_put(params, mesh_lib.param_shardings(mesh, params, sharding.rules(fsdp=True)))
  q = params['language_model']['layers_0']['self_attn']['q_proj']['kernel']
  assert q.addressable_shards[0].data.shape == (16, 8)  # (32, 32) over data=2 x model=4
  prompt = jnp.asarray(ref['prompt'])
  out = jax.jit(lambda p: model.apply({'params': p}, jnp.asarray(ref['pixels']), ids, start,
                                      jnp.full((2, 1), n - 1), rows, prompt))(params)
  for b in range(2):
    np.testing.assert_allclose(out['logits'][b, 0], ref['logits_1'], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out['attention'][:, b], ref['attention_1'], rtol=1e-5, atol=1e-6)


REAL_CONFIGS = {
    # llava-hf config.json values.
    'onevision-0.5b': dict(text=dict(model_type='qwen2', vocab_size=152000, hidden_size=896,
                                     intermediate_size=4864, num_hidden_layers=24,
                                     num_attention_heads=14, num_key_value_heads=2,
                                     tie_word_embeddings=True), model_type='llava_onevision'),
    'onevision-7b': dict(text=dict(model_type='qwen2', vocab_size=152128, hidden_size=3584,
                                   intermediate_size=18944, num_hidden_layers=28,
                                   num_attention_heads=28, num_key_value_heads=4),
                         model_type='llava_onevision'),
    'nextvideo-7b': dict(text=dict(model_type='llama', vocab_size=32064, hidden_size=4096,
                                   intermediate_size=11008, num_hidden_layers=32,
                                   num_attention_heads=32, num_key_value_heads=32),
                         model_type='llava_next_video'),
}
SIGLIP = dict(model_type='siglip_vision_model', image_size=384, patch_size=14, hidden_size=1152,
              intermediate_size=4304, num_hidden_layers=26, num_attention_heads=16)
CLIP_L = dict(model_type='clip_vision_model', image_size=336, patch_size=14, hidden_size=1024,
              intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
              hidden_act='quick_gelu', layer_norm_eps=1e-5)


@pytest.mark.parametrize('name', sorted(REAL_CONFIGS))
def test_real_sizes_split_evenly_over_eight_chips(name):
  """Every dimension the rules split divides by 8 (on `model`, and on `data` under FSDP), so the
  backends lay out on a v4-8 / v5e-8 without uneven shards."""
  if jax.device_count() < 8:
    pytest.skip('needs 8 devices (tests/conftest.py sets --xla_force_host_platform_device_count=8)')
  spec = REAL_CONFIGS[name]
  config = convert.config_from_hf({
      'model_type': spec['model_type'], 'text_config': spec['text'],
      'vision_config': SIGLIP if spec['model_type'] == 'llava_onevision' else CLIP_L,
      'vision_feature_layer': -1 if spec['model_type'] == 'llava_onevision' else -2,
      'vision_feature_select_strategy': 'full' if spec['model_type'] == 'llava_onevision'
                                        else 'default'})
  shapes = jax.eval_shape(lambda: convert.init_params(config))
  count = sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes))
  assert count > (4e8 if '0.5b' in name else 6e9)
  for data, model in ((1, 8), (8, 1)):  # FSDP rules: one axis of each split matrix per mesh axis
    mesh = mesh_lib.make_mesh(ml_collections.ConfigDict({'data': data, 'model': model}))
    shardings = mesh_lib.param_shardings(mesh, shapes, sharding.rules(fsdp=True))
    # shard_shape raises on a dimension the mesh axis does not divide.
    jax.tree.map(lambda sh, leaf: sh.shard_shape(leaf.shape), shardings, shapes)


def test_rules_name_the_engine_mesh_axes():
  assert (sharding.DATA_AXIS, sharding.MODEL_AXIS) == (mesh_lib.DATA_AXIS, mesh_lib.MODEL_AXIS)
