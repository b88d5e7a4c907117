"""The causal decoder's invariants: the attention read-out equals rows of the full probability
maps, and right padding changes nothing."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxvg.modules.llm import (AttentionReadout, CausalDecoder, DecoderConfig, apply_rope,
                               rope_cos_sin)

CONFIG = DecoderConfig(vocab_size=50, hidden_size=32, intermediate_size=48, num_layers=2,
                       num_heads=4, num_kv_heads=2, rope_theta=1e4, qkv_bias=True)


def full_probs(params, x, layer):
  """Materialised softmax(q kᵀ/√d + causal) of one layer, from the block's own weights."""
  p = params[f'layers_{layer}']
  att = p['self_attn']
  h = x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + CONFIG.rms_norm_eps)
  h = h * p['input_layernorm']['weight']
  s = x.shape[1]
  q = (h @ att['q_proj']['kernel'] + att['q_proj']['bias']).reshape(1, s, 4, 8)
  k = (h @ att['k_proj']['kernel'] + att['k_proj']['bias']).reshape(1, s, 2, 8)
  cos, sin = rope_cos_sin(jnp.arange(s)[None], 8, CONFIG.rope_theta)
  q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
  k = jnp.repeat(k, 2, axis=2)  # query head h reads KV head h // 2
  logits = jnp.einsum('bqhd,bkhd->bhqk', q, k) / np.sqrt(8)
  logits = jnp.where(jnp.tril(jnp.ones((s, s), bool)), logits, -jnp.inf)
  return jax.nn.softmax(logits, -1)


def test_readout_rows_are_rows_of_the_full_maps_and_padding_is_exact():
  s, start, stop = 12, 2, 9
  model = CausalDecoder(CONFIG, readout=AttentionReadout((0,), start, stop))
  ids = jax.random.randint(jax.random.key(0), (1, s), 0, 50)
  rows = jnp.array([[8, 11]])
  prefill = lambda m, ids, n, r: m(m.embed(ids), jnp.array([[n - 1]]), r)  # noqa: E731
  params = model.init(jax.random.key(1), ids, s, rows, method=prefill)['params']
  run = jax.jit(lambda ids, n: model.apply({'params': params}, ids, n, rows, method=prefill),
                static_argnums=1)
  out = run(ids, s)
  embeds = params['embed_tokens']['embedding'][ids]
  probs = jax.jit(full_probs, static_argnums=2)(params, embeds, 0)[0][:, [8, 11], start:stop]
  np.testing.assert_allclose(out['attention'][0, 0], probs, rtol=1e-5, atol=1e-7)
  out_padded = run(jnp.concatenate([ids, jnp.ones((1, 5), ids.dtype)], axis=1), s)
  for key in ('logits', 'attention'):
    np.testing.assert_allclose(out_padded[key], out[key], rtol=1e-5, atol=1e-6)

