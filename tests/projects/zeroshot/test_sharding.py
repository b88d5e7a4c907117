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
