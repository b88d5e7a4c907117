"""The zero-shot benchmark's cost model: its FLOPs equal XLA's count of the compiled programs, its
parameter counts the published model sizes, and its estimates are self-consistent."""
import dataclasses

import jax
import jax.numpy as jnp
import pytest

from jaxvg.bench import r2tuning as r2_bench
from jaxvg.bench import zeroshot
from jaxvg.modules.llm import AttentionReadout
from jaxvg.projects.zeroshot import pipeline
from jaxvg.projects.zeroshot.llava import Llava


def test_flop_model_equals_xla_cost_analysis_at_0_5b_widths():
  """Two decoder layers and one tower layer of the 0.5B backend, two frames, 512 tokens."""
  config = zeroshot.reduce(zeroshot.BACKENDS['onevision_0.5b'], 2, 1)
  frames, seq_len, start = 2, 512, 21
  num_visual = config.num_visual_tokens(frames)
  model = Llava(config, jnp.float32, AttentionReadout((0, 1), start, start + num_visual))
  params = zeroshot.abstract_params(config)
  tokens = jax.ShapeDtypeStruct((num_visual, config.decoder.hidden_size), jnp.float32)
  ids = jax.ShapeDtypeStruct((2, seq_len), jnp.int32)
  lengths = jax.ShapeDtypeStruct((2,), jnp.int32)
  read = pipeline.prefill.lower(model, params, tokens, tokens, ids, lengths, start=start,
                                token_indices=(-3,), answer_ids=(1, 2)).compile()
  xla_flops = r2_bench._cost(read)[0]
  assert zeroshot.read_flops(config, seq_len) / xla_flops == pytest.approx(1, abs=0.02)
  size = config.vision.image_size
  pixels = jax.ShapeDtypeStruct((frames, size, size, 3), jnp.float32)
  encode = pipeline.encode_video.lower(model, params, pixels).compile()
  assert zeroshot.vision_flops(config, frames) / r2_bench._cost(encode)[0] == pytest.approx(
      1, abs=0.02)


def test_parameter_counts_are_the_published_sizes():
  # Hugging Face model cards: llava-onevision-qwen2-0.5b-ov-hf 894M, -7b-ov-hf 8.03B.
  assert round(zeroshot.param_count(zeroshot.BACKENDS['onevision_0.5b']) / 1e6) == 894
  assert round(zeroshot.param_count(zeroshot.BACKENDS['onevision_7b']) / 1e7) == 803


def test_estimates_split_weights_over_chips_and_grow_with_the_method():
  config = zeroshot.BACKENDS['onevision_7b']
  tpu = zeroshot.estimate(config, zeroshot.HARDWARE['tpu_v5e_8'])
  gpu = zeroshot.estimate(config, zeroshot.HARDWARE['gpu_a100_80gb'])
  assert tpu['seq_len'] == gpu['seq_len'] == 4096           # 20 x 196 + 1 visual tokens + text
  assert gpu['weights_gb_per_device'] == pytest.approx(8 * tpu['weights_gb_per_device'])
  assert 16.0 < gpu['weights_gb_per_device'] < 16.2 and tpu['fits'] and gpu['fits']
  for e in (tpu, gpu):
    assert e['s_per_query_base'] < e['s_per_query_lra'] < e['s_per_query_tas']
  one_chip = dataclasses.replace(zeroshot.HARDWARE['tpu_v5e_8'], chips=1)
  assert not zeroshot.estimate(config, one_chip)['fits']    # 16 GB of weights on a 16 GB chip
