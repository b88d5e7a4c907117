"""The zero-shot grounder as pure functions: prefill, grounding-token maps, LRA, TAS, scoring.

Device side (jittable): one batched prefill per video returns the yes/no margins at the answer
position and the grounding token's attention over the visual tokens; LRA is `jax.grad` of the
margin loss with respect to an additive visual prompt. Host side (NumPy): track scores from
candidate tube masks, frame scores inside the chosen tube and the temporal span.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxvg.modules.llm import AttentionReadout, select_layers
from jaxvg.modules.pooling import bilinear_resize_matrix
from jaxvg.projects.zeroshot import prompts
from jaxvg.projects.zeroshot.llava import Llava, LlavaConfig

RELATIVE_EPS = 1e-4  # rela = a(Q) / (a(caption) + 1e-4)


@dataclasses.dataclass(frozen=True)
class GroundingConfig:
  """Method settings (the released script's flags in comments)."""
  template: str = 'qwen_1_5'  # --conv-mode
  token_index: int = -3  # --token_idx: grounding-token row, from the end of the prompt
  layers: tuple[int | None, int | None] = (-26, -6)  # slice of layers averaged (code [-26:-6])
  heads: tuple[int, ...] | None = None  # query heads averaged; None = all
  answer_tokens: tuple[str, str] = ('yes', 'no')  # --yes_id/--no_id, looked up in the tokenizer
  mode: str = 'base'  # 'base' | 'focus_attr' | 'focus_act' | 'full' (the paper's DSTH)
  lra_steps: int = 2  # --ttt_epoch (paper default 1)
  lra_lr: float = 8.0  # --s_lr / --t_lr
  lra_beta: float = 0.5  # --beta: EMA blend with the previous iterate
  tas: bool = False  # paper §3.4: also read the spatial map on reversed frames and average
  reread_full_query: bool = False  # paper Alg. 1 re-reads with Q; the code with the sub-query
  frames_thre: int = 10  # --frames_thre: the span grows to frames_thre + 1 sampled frames
  prompt_bucket: int = 128  # padded prompt length (static shapes)


@dataclasses.dataclass(frozen=True)
class Backend:
  """A loaded MLLM: model with the read-out wired for this visual layout, params, token ids."""
  model: Llava
  params: Any
  tokenizer: Any
  yes_id: int
  no_id: int
  pad_id: int
  num_frames: int

  @classmethod
  def create(cls, config: LlavaConfig, params, tokenizer, grounding: GroundingConfig,
             num_frames: int, visual_start: int, remat: bool = False) -> 'Backend':
    layers = select_layers(slice(*grounding.layers), config.decoder.num_layers)
    if not layers:
      raise ValueError(f'layer window {grounding.layers} selects no layer of '
                       f'{config.decoder.num_layers}')
    readout = AttentionReadout(layers, visual_start, visual_start + config.num_visual_tokens(num_frames))
    yes, no = (prompts.token_id(tokenizer, t) for t in grounding.answer_tokens)
    return cls(Llava(config, readout=readout, remat=remat), params, tokenizer, yes, no,
               pad_id=0, num_frames=num_frames)


def visual_start(tokenizer, template: str) -> int:
  """Position of the first visual token: the length of the text before the visual block."""
  return len(prompts.encode_prompt(tokenizer, template, '')[0])


def encode_video(backend: Backend, pixels: jax.Array) -> jax.Array:
  """(F, H, W, 3) normalised frames -> (V, D) visual tokens (outside any gradient)."""
  return backend.model.apply({'params': backend.params}, pixels, method=Llava.encode_video)


def prefill(backend: Backend, visual: jax.Array, prompt: jax.Array, ids: jax.Array,
            lengths: jax.Array, start: int, token_index: int) -> dict[str, jax.Array]:
  """One prefill of Q questions over the same (V, D) visual tokens plus additive prompt.

  Returns 'margin' (Q,) = logit[yes] − logit[no] at the answer position, 'logits' (Q, vocab) and
  'attention' (layers, Q, H, V): the grounding-token row over the visual columns.
  """
  m, variables = backend.model, {'params': backend.params}
  tokens = jnp.broadcast_to(visual + prompt, (ids.shape[0],) + visual.shape)
  embeds = m.apply(variables, ids, tokens, start, method=Llava.splice)
  out = m.apply(variables, embeds, (lengths - 1)[:, None], (lengths + token_index)[:, None],
                method=Llava.decode)
  logits = out['logits'][:, 0]
  return {'logits': logits, 'margin': logits[:, backend.yes_id] - logits[:, backend.no_id],
          'attention': out['attention'][:, :, :, 0]}


def margin_loss(margins: jax.Array) -> jax.Array:
  """The code's LRA loss Σ_{q≥1} [1 − (s_q − s_0)], question 0 being the caption prompt."""
  return jnp.sum(1.0 - (margins[1:] - margins[0]))


def latent_reattention(loss_fn: Callable[[jax.Array], jax.Array], prompt0: jax.Array,
                       steps: int, lr: float, beta: float) -> jax.Array:
  """LRA: plain gradient steps on the additive prompt with the code's EMA blend.

  Each step evaluates the loss at V_cur = β·V + (1 − β)·V_prev and steps V by −lr·∂L/∂V. At the
  first step V_prev is V itself (∂V_cur/∂V = 1); later ∂V_cur/∂V = β, as torch computes it.
  Returns the blend β·V + (1 − β)·V_prev that the maps are re-read with.
  """
  prompt, previous = prompt0, prompt0
  grad_fn = jax.grad(loss_fn)
  for step in range(steps):
    current = beta * prompt + (1 - beta) * previous
    grad = grad_fn(current) * (1.0 if step == 0 else beta)
    previous, prompt = prompt, prompt - lr * grad
  return beta * prompt + (1 - beta) * previous


def grounding_map(attention: jax.Array, config: LlavaConfig, num_frames: int,
                  heads: tuple[int, ...] | None = None) -> jax.Array:
  """(layers, Q, H, V) read-out -> (Q, F, g, g): mean over layers and heads, newline dropped."""
  if heads is not None:
    attention = attention[:, :, list(heads)]
  a = attention.mean(axis=(0, 2))
  if config.newline:
    a = a[:, :-1]
  g = config.pooled_grid
  return a.reshape(a.shape[0], num_frames, g, g)


def relative_map(question_map: jax.Array, caption_map: jax.Array) -> jax.Array:
  return question_map / (caption_map + RELATIVE_EPS)


def reverse_frames(tokens: jax.Array, num_frames: int, newline: bool) -> jax.Array:
  """Reverses the frame blocks of (V, D) visual tokens (or a prompt); the newline stays last."""
  body, tail = (tokens[:-1], tokens[-1:]) if newline else (tokens, tokens[:0])
  body = body.reshape(num_frames, -1, body.shape[-1])[::-1].reshape(-1, body.shape[-1])
  return jnp.concatenate([body, tail], axis=0)


# ----------------------------------------------------------------------------- host-side scoring


def track_scores(rela: np.ndarray, masks: np.ndarray) -> np.ndarray:
  """(F, g, g) relative map, (P, F, H, W) tube masks -> (P,) max of map × mask resized to g×g
  (torch bilinear, align_corners=False), as `spatial_llm_att` scores tracks."""
  g = rela.shape[-1]
  wh = bilinear_resize_matrix(masks.shape[-2], g)
  ww = bilinear_resize_matrix(masks.shape[-1], g)
  small = np.einsum('hH,pfHW,wW->pfhw', wh, masks.astype(np.float64), ww)
  return (small * rela[None]).reshape(masks.shape[0], -1).max(axis=1)


def frame_scores(rela: np.ndarray, masks: np.ndarray) -> np.ndarray:
  """(F, g, g) map upsampled bilinearly to the mask size, × (P, F, H, W) masks, spatial max ->
  (P, F) (`evaluation_llava_att`)."""
  wh = bilinear_resize_matrix(rela.shape[-2], masks.shape[-2])
  ww = bilinear_resize_matrix(rela.shape[-1], masks.shape[-1])
  up = np.einsum('Hh,fhw,Ww->fHW', wh, rela.astype(np.float64), ww)
  return (masks * up[None]).reshape(masks.shape[0], masks.shape[1], -1).max(axis=-1)


def grow_span(scores: np.ndarray, frames_thre: int) -> tuple[int, int]:
  """The code's temporal rule on one track's (F,) frame scores -> (first, last) sampled frame.

  Normalise by the max (+1e-4), start at the best frame, add the better neighbour until more
  than `frames_thre` frames are selected; a tie stops the growth.
  """
  norm = scores / (scores.max() + 1e-4)
  center = int(np.argmax(scores))
  lo = hi = center
  for _ in range(len(norm) - 1):
    if hi - lo + 1 > frames_thre:
      break
    left = norm[lo - 1] if lo - 1 >= 0 else -100.0
    right = norm[hi + 1] if hi + 1 < len(norm) else -100.0
    if left > right:
      lo -= 1
    elif left < right:
      hi += 1
    else:
      break
  return lo, hi
