"""Zero-shot STVG cost: `python -m jaxvg.bench --only zeroshot [--quick]`.

Measured, with random weights (the cost does not depend on them): LLaVA-OneVision 0.5B (SigLIP
so400m + Qwen2-0.5B) at the paper's 20 frames (3,921 visual tokens, prompts padded to 4,096),
the prefill's tokens per second (2 questions, as every read runs them) and the seconds per query
of the grounder in three settings: `base` (one read), `lra` (the paper's DSTH without TAS: two
branches, each one LRA step and one read) and `tas` (plus the time-reversed spatial branch). A
query starts from decoded frames (the vision tower is timed with it); compile time is excluded
and reported apart. Peak memory: XLA's buffer sizes of the compiled prefill and LRA step, and the
process's peak resident memory; and, compiled on abstract parameters (never run), XLA's buffers
of both at the full 20-frame size on the current backend (`compiled_onevision_0.5b_20f`).

On a CPU the full configuration takes minutes per query, so there (and with `--quick`) the
*reduced* case runs: 2 frames, 4 of the 24 decoder layers and 4 of the 26 tower layers, labelled
as such; the analytic cost model below then scales the measured rate to the full configuration.

Estimates (labelled `estimate_*`): per-device memory and seconds per query of the 7B backends
(OneVision-7B: SigLIP + Qwen2-7B; NeXT-Video-7B: CLIP-L + Vicuna-7B) on a TPU v5e-8 (tensor
parallel over 8 chips) and on one 80 GB GPU (A100-80GB, the paper's machine), bf16. The model:
  FLOPs of one read (Q questions of S tokens, decoder of L layers, width D, H heads of hd dims,
  MLP width I, vocabulary V, N_lin = weights of the decoder's linear layers):
      F_read = 2·Q·S·N_lin + 4·Q·L·S²·H·hd + 2·Q·D·V
  (the causal attention counted in full, as XLA's fused attention computes it); the vision tower
  on F frames of T patches, width Dv, MLP Iv, Lv layers, patch p, projector to D:
      F_vis = F·(Lv·(2·T·(4·Dv² + 2·Dv·Iv) + 4·T²·Dv) + 2·T·3·p²·Dv + 2·T·(Dv·D + D²))
  (Lv: the blocks up to the feature layer)
  an LRA step is a forward and a backward with each block recomputed (remat): 4·F_read;
  per query: F_vis + reads·F_read + lra_steps·branches·4·F_read, with (reads, branches) =
  (1, 0) base, (2, 2) lra, (3, 3) tas.
  seconds = max(FLOPs / (chips · peak · MFU), passes · weight bytes per chip / HBM bandwidth),
  MFU = 0.4 [assumed].
  Memory per device = bf16 weights / tensor-parallel ways + the LRA step's activations: the saved
  block inputs L·Q·S·D·2 bytes (replicated) + one block's recomputed working set
  Q·S·(3·H·hd + 2·I)·2 bytes and the f32 attention logits and probabilities 2·Q·H·S²·4 bytes,
  both split over the tensor-parallel ways.
The FLOP model is checked against XLA's cost analysis of the measured prefill
(`flops_model_over_xla`).
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxvg.bench import r2tuning as r2_bench
from jaxvg.modules.llm import AttentionReadout, DecoderConfig, select_layers
from jaxvg.projects.zeroshot import pipeline, prompts
from jaxvg.projects.zeroshot.convert import KNOWN_TOWERS
from jaxvg.projects.zeroshot.llava import Llava, LlavaConfig

# The tiny fixture's byte-level tokenizer: the prompts' token ids are arbitrary for random weights;
# its texts are a little longer than Qwen2's (75 vs ~35 tokens), inside the same 4,096 bucket.
REPO = pathlib.Path(__file__).resolve().parents[2]
TOKENIZER = REPO / 'tests' / 'fixtures' / 'zeroshot_onevision'
QUERY = 'the man in purple clothes who walks to the door and sits down'
FRAMES = 20                    # the paper's INPUT.SAMPLE_FRAMES
TEXT_TOKENS = 64               # text around the visual block, for the estimates [assumed]
MFU = 0.4                      # model FLOP utilisation of the estimates [assumed]
LRA_STEPS = 1                  # the paper's default
REDUCED = dict(frames=2, decoder_layers=4, vision_layers=4)
# (reads, LRA branches) per query of each setting.
SETTINGS = {'base': (1, 0), 'lra': (2, 2), 'tas': (3, 3)}

_ONEVISION = dict(pool_mode='bilinear', pool_stride=2, pool_before_projector=False, newline=True,
                  vision_feature_layer=-1)
BACKENDS = {
    'onevision_0.5b': LlavaConfig(
        vision=KNOWN_TOWERS['siglip-so400m-patch14-384'],
        decoder=DecoderConfig(vocab_size=152000, hidden_size=896, intermediate_size=4864,
                              num_layers=24, num_heads=14, num_kv_heads=2, rope_theta=1e6,
                              qkv_bias=True, tie_word_embeddings=True), **_ONEVISION),
    'onevision_7b': LlavaConfig(
        vision=KNOWN_TOWERS['siglip-so400m-patch14-384'],
        decoder=DecoderConfig(vocab_size=152128, hidden_size=3584, intermediate_size=18944,
                              num_layers=28, num_heads=28, num_kv_heads=4, rope_theta=1e6,
                              qkv_bias=True), **_ONEVISION),
    # The released STVG script's model: the fork's average pooling (stride 4) after the projector.
    'nextvideo_7b': LlavaConfig(
        vision=KNOWN_TOWERS['clip-vit-large-patch14-336'],
        decoder=DecoderConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008,
                              num_layers=32, num_heads=32, num_kv_heads=32, rms_norm_eps=1e-5,
                              rope_linear_scale=2.0),
        vision_feature_layer=-2, drop_class_token=True, pool_mode='average', pool_stride=4,
        pool_before_projector=False, newline=False),
}


@dataclasses.dataclass(frozen=True)
class Hardware:
  name: str
  chips: int
  bf16_tflops: float       # dense peak per chip
  hbm_gb: float            # per chip
  hbm_gb_per_s: float      # per chip


HARDWARE = {
    'tpu_v5e_8': Hardware('TPU v5e-8 (tensor parallel over 8 chips)', 8, 197.0, 16.0, 819.0),
    'gpu_a100_80gb': Hardware('one A100-80GB GPU', 1, 312.0, 80.0, 2039.0),
}


def reduce(config: LlavaConfig, decoder_layers: int, vision_layers: int) -> LlavaConfig:
  return dataclasses.replace(
      config, decoder=dataclasses.replace(config.decoder, num_layers=decoder_layers),
      vision=dataclasses.replace(config.vision, num_layers=vision_layers))


def bucket(config: LlavaConfig, frames: int, text_tokens: int) -> int:
  """Prompt length: visual tokens plus text, rounded up to a multiple of 128."""
  return -(-(config.num_visual_tokens(frames) + text_tokens) // 128) * 128


# ----------------------------------------------------------------------------- the cost model


def _linear_weights(d: DecoderConfig) -> int:
  hd = d.dims_per_head
  attention = d.hidden_size * hd * (2 * d.num_heads + 2 * d.num_kv_heads)
  return d.num_layers * (attention + 3 * d.hidden_size * d.intermediate_size)


def read_flops(config: LlavaConfig, seq_len: int, questions: int = 2) -> float:
  """F_read of the module docstring."""
  d = config.decoder
  return (2 * questions * seq_len * _linear_weights(d)
          + 4 * questions * d.num_layers * seq_len ** 2 * d.num_heads * d.dims_per_head
          + 2 * questions * d.hidden_size * d.vocab_size)


def vision_flops(config: LlavaConfig, frames: int) -> float:
  """F_vis of the module docstring."""
  v, out = config.vision, config.decoder.hidden_size
  tokens = v.grid ** 2 + int(v.class_token)
  layer = config.vision_feature_layer   # hidden_states[i]: the blocks up to i run
  ran = v.num_layers + 1 + layer if layer < 0 else layer
  per_layer = 2 * tokens * (4 * v.hidden_size ** 2 + 2 * v.hidden_size * v.intermediate_size) \
      + 4 * tokens ** 2 * v.hidden_size
  return frames * (ran * per_layer + 2 * tokens * 3 * v.patch_size ** 2 * v.hidden_size
                   + 2 * tokens * (v.hidden_size * out + out ** 2))


def query_flops(config: LlavaConfig, frames: int, seq_len: int, setting: str,
                lra_steps: int = LRA_STEPS) -> float:
  reads, branches = SETTINGS[setting]
  per_read = read_flops(config, seq_len)
  return vision_flops(config, frames) + (reads + 4 * lra_steps * branches) * per_read


@functools.lru_cache(maxsize=None)
def abstract_params(config: LlavaConfig):
  """The parameters' shapes (f32), from the model's abstract initialisation."""
  size = config.vision.image_size
  return jax.eval_shape(lambda: Llava(config).init(
      jax.random.key(0), jnp.zeros((1, size, size, 3)),
      jnp.zeros((1, config.num_visual_tokens(1) + 1), jnp.int32), 0,
      jnp.zeros((1, 1), jnp.int32))['params'])


def param_count(config: LlavaConfig) -> int:
  """Exact, from the abstract initialisation (traced once per configuration)."""
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(abstract_params(config)))


def estimate(config: LlavaConfig, hardware: Hardware, frames: int = FRAMES,
             text_tokens: int = TEXT_TOKENS, questions: int = 2) -> dict[str, float]:
  """Per-device memory (GB) and seconds per query of each setting (module docstring)."""
  d, ways = config.decoder, hardware.chips
  seq_len = bucket(config, frames, text_tokens)
  weight_bytes = 2 * param_count(config) / ways
  saved = d.num_layers * questions * seq_len * d.hidden_size * 2
  block = (questions * seq_len * (3 * d.num_heads * d.dims_per_head + 2 * d.intermediate_size) * 2
           + 2 * questions * d.num_heads * seq_len ** 2 * 4) / ways
  memory_gb = (weight_bytes + saved + block) / 1e9
  out = {'seq_len': seq_len, 'weights_gb_per_device': weight_bytes / 1e9,
         'lra_activations_gb_per_device': (saved + block) / 1e9,
         'memory_gb_per_device': memory_gb, 'fits': memory_gb < hardware.hbm_gb}
  for setting, (reads, branches) in SETTINGS.items():
    compute = query_flops(config, frames, seq_len, setting) / (
        hardware.chips * hardware.bf16_tflops * 1e12 * MFU)
    streaming = (1 + reads + 4 * LRA_STEPS * branches) * weight_bytes / (
        hardware.hbm_gb_per_s * 1e9)
    out[f's_per_query_{setting}'] = max(compute, streaming)
  return out


# ----------------------------------------------------------------------------- measurement


def _grounder(backend: pipeline.Backend, setting: str, layers) -> pipeline.Grounder:
  reads, branches = SETTINGS[setting]
  return pipeline.Grounder(backend, pipeline.GroundingConfig(
      mode='base' if setting == 'base' else 'full', tas=setting == 'tas', lra_steps=LRA_STEPS,
      gti_tokens=(-6, -5, -4, -3, -2, -1) if branches else (), layers=layers,
      prompt_bucket=backend_bucket(backend)))


def backend_bucket(backend: pipeline.Backend) -> int:
  return bucket(backend.model.config, backend.num_frames, 2 * TEXT_TOKENS)


def _buffers_mb(compiled) -> dict[str, float]:
  stats = compiled.memory_analysis()
  if stats is None:
    return {}
  return {'args_mb': stats.argument_size_in_bytes / 2**20,
          'temp_mb': stats.temp_size_in_bytes / 2**20,
          'output_mb': stats.output_size_in_bytes / 2**20}


def compiled_memory(config: LlavaConfig, frames: int, dtype) -> dict[str, Any]:
  """XLA's buffers (MB) of the prefill and the LRA step at full size on this backend: compiled
  on abstract parameters, never run. Beside them the cost model's LRA activations (GB)."""
  tokenizer = prompts.load_tokenizer(TOKENIZER)
  start = pipeline.visual_start(tokenizer, 'qwen_1_5')
  num_visual = config.num_visual_tokens(frames)
  seq_len = bucket(config, frames, 2 * TEXT_TOKENS)
  readout = AttentionReadout(select_layers(slice(-26, -6), config.decoder.num_layers), start,
                             start + num_visual)
  model = Llava(config, dtype, readout, remat=True)
  params = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, dtype), abstract_params(config))
  tokens = jax.ShapeDtypeStruct((num_visual, config.decoder.hidden_size), dtype)
  ids = jax.ShapeDtypeStruct((2, seq_len), jnp.int32)
  lengths = jax.ShapeDtypeStruct((2,), jnp.int32)
  static = dict(start=start, token_indices=(-6, -5, -4, -3, -2, -1), answer_ids=(0, 1))
  read = pipeline.prefill.lower(model, params, tokens, tokens, ids, lengths, **static).compile()
  lra = pipeline.tune_prompt.lower(model, params, tokens, ids, lengths, steps=LRA_STEPS, lr=8.0,
                                   beta=0.5, **static).compile()
  single = estimate(config, HARDWARE['gpu_a100_80gb'], frames)   # one device
  return {'dtype': jnp.dtype(dtype).name, 'seq_len': seq_len, 'prefill': _buffers_mb(read),
          'lra_step': _buffers_mb(lra),
          'model_lra_activations_gb': single['lra_activations_gb_per_device']}


def measure(config: LlavaConfig, frames: int, layers, repeats: int, dtype) -> dict[str, Any]:
  """Prefill tokens/s and seconds per query of each setting, on random weights."""
  size = config.vision.image_size
  model = Llava(config, dtype)
  num_visual = config.num_visual_tokens(frames)
  start = time.perf_counter()
  params = jax.jit(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, size, size, 3)), jnp.zeros((1, num_visual + 1), jnp.int32),
      0, jnp.zeros((1, 1), jnp.int32))['params'])()
  params = jax.block_until_ready(jax.tree.map(lambda x: x.astype(dtype), params))
  init_s = time.perf_counter() - start
  tokenizer = prompts.load_tokenizer(TOKENIZER)
  grounding = pipeline.GroundingConfig(layers=layers)
  backend = pipeline.Backend.create(config, params, tokenizer, grounding, frames, remat=True,
                                    dtype=dtype)
  seq_len = backend_bucket(backend)
  result: dict[str, Any] = {'frames': frames, 'visual_tokens': num_visual, 'seq_len': seq_len,
                            'decoder_layers': config.decoder.num_layers,
                            'vision_layers': config.vision.num_layers,
                            'params': sum(x.size for x in jax.tree.leaves(params)),
                            'dtype': jnp.dtype(dtype).name, 'init_s': init_s}
  rng = np.random.default_rng(0)
  pixels = jnp.asarray(rng.standard_normal((frames, size, size, 3)), dtype)
  visual = pipeline.encode_video(backend.model, params, pixels)
  ids, lengths, visual_start = prompts.pack_prompts(
      tokenizer, 'qwen_1_5', [prompts.yes_no_question(QUERY), prompts.CAPTION_PROMPT],
      num_visual, backend.pad_id, seq_len)
  args = (backend.model, params, visual, jnp.zeros_like(visual), ids, lengths)
  static = dict(start=visual_start, token_indices=(-3,),
                answer_ids=(backend.yes_id, backend.no_id))
  start = time.perf_counter()
  prefill = pipeline.prefill.lower(*args, **static).compile()
  result['prefill_compile_s'] = time.perf_counter() - start
  lra = pipeline.tune_prompt.lower(*args[:3], ids, lengths, steps=LRA_STEPS, lr=8.0, beta=0.5,
                                   **static).compile()
  flops, _ = r2_bench._cost(prefill)
  seconds, cpu_s, steal = r2_bench._median_seconds(lambda: prefill(*args[1:]), repeats)
  result['prefill'] = {'s': seconds, 'cpu_s': cpu_s, 'steal_fraction': steal,
                       'tokens_per_s': ids.size / seconds, 'xla_gflop': flops / 1e9,
                       'achieved_gflops': flops / 1e9 / seconds,
                       'flops_model_over_xla': read_flops(config, seq_len) / flops,
                       **_buffers_mb(prefill)}
  result['lra_step'] = _buffers_mb(lra)
  masks = np.zeros((3, frames, 48, 64), np.float32)
  for p in range(3):
    masks[p, :, 8 * p:8 * p + 24, 10 * p:10 * p + 30] = 1.0
  for setting in SETTINGS:
    grounder = _grounder(backend, setting, layers)
    start = time.perf_counter()
    jax.block_until_ready(grounder.ground(pixels, QUERY, masks)['track_scores'])
    first_s = time.perf_counter() - start
    seconds, cpu_s, steal = r2_bench._median_seconds(
        lambda: grounder.ground(pixels, QUERY, masks)['track_scores'], repeats)
    gflop = query_flops(config, frames, seq_len, setting) / 1e9
    result[f'query_{setting}'] = {'s': seconds, 'cpu_s': cpu_s, 'steal_fraction': steal,
                                  'first_call_s': first_s, 'model_gflop': gflop}
  result['peak_rss_mb'] = r2_bench._maxrss_mb()
  return result


def run(repeats: int = 3, ceiling_gflops: float | None = None, quick: bool = False) -> dict:
  """The measured 0.5B case (reduced on CPU or with `quick`) and the 7B estimates."""
  on_cpu = jax.default_backend() == 'cpu'
  reduced = quick or on_cpu
  config = BACKENDS['onevision_0.5b']
  frames, layers = FRAMES, (-26, -6)
  if reduced:
    config = reduce(config, REDUCED['decoder_layers'], REDUCED['vision_layers'])
    frames, layers = REDUCED['frames'], (None, None)
  measured = measure(config, frames, layers, repeats, jnp.float32 if on_cpu else jnp.bfloat16)
  label = ('onevision_0.5b' if not reduced else
           'onevision_0.5b_reduced_{frames}f_{decoder_layers}of24dec_{vision_layers}of26vis'
           .format(**REDUCED))
  result: dict[str, Any] = {label: measured}
  rate = measured['prefill']['achieved_gflops']
  if ceiling_gflops:
    measured['prefill']['fraction_of_ceiling'] = rate / ceiling_gflops
  if reduced:   # the full 0.5B configuration at the measured rate
    full = BACKENDS['onevision_0.5b']
    seq_len = bucket(full, FRAMES, 2 * TEXT_TOKENS)
    result['estimate_onevision_0.5b_20f_here'] = {
        f's_per_query_{s}': query_flops(full, FRAMES, seq_len, s) / 1e9 / rate for s in SETTINGS}
  result['compiled_onevision_0.5b_20f'] = compiled_memory(
      BACKENDS['onevision_0.5b'], FRAMES, jnp.float32 if on_cpu else jnp.bfloat16)
  for name in ('onevision_7b', 'nextvideo_7b'):
    for hw_name, hardware in HARDWARE.items():
      result[f'estimate_{name}_{hw_name}'] = estimate(BACKENDS[name], hardware)
  return result
