"""The zero-shot grounder as pure functions: prefill, grounding-token maps, LRA, TAS, scoring.

Device side (jittable): one batched prefill per video returns the yes/no margins at the answer
position and the grounding token's attention over the visual tokens; LRA is `jax.grad` of the
margin loss with respect to an additive visual prompt. Host side (NumPy): track scores from
candidate tube masks, frame scores inside the chosen tube and the temporal span.
"""
from __future__ import annotations

import dataclasses
import functools
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
  # GTI (paper §3.2, not in the released code): candidate rows; the one whose (layer/head-mean)
  # map of the question has the largest maximum is used for every question of the read
  # [assumed: raw attention, one token per read]. () = the fixed token_index.
  gti_tokens: tuple[int, ...] = ()
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
             num_frames: int, remat: bool = False, dtype=jnp.float32) -> 'Backend':
    """`dtype`: activation dtype (bf16 for 7B; softmax, norms and logits stay f32)."""
    layers = select_layers(slice(*grounding.layers), config.decoder.num_layers)
    if not layers:
      raise ValueError(f'layer window {grounding.layers} selects no layer of '
                       f'{config.decoder.num_layers}')
    start = visual_start(tokenizer, grounding.template)
    readout = AttentionReadout(layers, start, start + config.num_visual_tokens(num_frames))
    yes, no = (prompts.token_id(tokenizer, t) for t in grounding.answer_tokens)
    return cls(Llava(config, dtype, readout, remat), params, tokenizer, yes, no,
               pad_id=0, num_frames=num_frames)


def visual_start(tokenizer, template: str) -> int:
  """Position of the first visual token: the length of the text before the visual block."""
  return len(prompts.encode_prompt(tokenizer, template, '')[0])


@functools.partial(jax.jit, static_argnames=('model',))
def encode_video(model: Llava, params, pixels: jax.Array) -> jax.Array:
  """(F, H, W, 3) normalised frames -> (V, D) visual tokens (outside any gradient)."""
  return model.apply({'params': params}, pixels, method=Llava.encode_video)


_PREFILL_STATIC = ('model', 'start', 'token_indices', 'answer_ids')


def _prefill(model: Llava, params, visual: jax.Array, prompt: jax.Array, ids: jax.Array,
             lengths: jax.Array, *, start: int, token_indices: tuple[int, ...],
             answer_ids: tuple[int, int]) -> dict[str, jax.Array]:
  variables = {'params': params}
  tokens = jnp.broadcast_to(visual + prompt, (ids.shape[0],) + visual.shape)
  embeds = model.apply(variables, ids, tokens, start, method=Llava.splice)
  rows = lengths[:, None] + jnp.asarray(token_indices)[None]
  out = model.apply(variables, embeds, (lengths - 1)[:, None], rows, method=Llava.decode)
  logits = out['logits'][:, 0]
  return {'logits': logits, 'margin': logits[:, answer_ids[0]] - logits[:, answer_ids[1]],
          'attention': out['attention']}


prefill = jax.jit(_prefill, static_argnames=_PREFILL_STATIC)
prefill.__doc__ = """One prefill of Q questions over the same (V, D) visual tokens plus a prompt.

ids (Q, S) right-padded with the visual placeholders at [start, start + V), lengths (Q,).
Returns 'margin' (Q,) = logit[yes] − logit[no] at the answer position, 'logits' (Q, vocab) and
'attention' (layers, Q, H, R, V): the rows lengths + token_indices (grounding-token candidates)
over the visual columns, for the layers of the model's read-out.
"""


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


@functools.partial(jax.jit, static_argnames=_PREFILL_STATIC + ('steps',))
def tune_prompt(model: Llava, params, visual: jax.Array, ids: jax.Array, lengths: jax.Array, *,
                start: int, token_indices: tuple[int, ...], answer_ids: tuple[int, int], steps: int,
                lr: float | jax.Array, beta: float | jax.Array) -> jax.Array:
  """LRA's prompt (V, D) for questions [caption, sub-query, ...] over one video's tokens."""
  def loss(prompt):
    return margin_loss(_prefill(model, params, visual, prompt, ids, lengths, start=start,
                                token_indices=token_indices, answer_ids=answer_ids)['margin'])
  return latent_reattention(loss, jnp.zeros_like(visual), steps, lr, beta)


def grounding_map(attention: jax.Array, config: LlavaConfig, num_frames: int,
                  heads: tuple[int, ...] | None = None) -> jax.Array:
  """(layers, Q, H, R, V) read-out -> (Q, F, g, g): mean over layers and heads, newline dropped;
  of R candidate rows, the one whose map of question 0 peaks highest (GTI)."""
  if heads is not None:
    attention = attention[:, :, list(heads)]
  a = attention.mean(axis=(0, 2))  # (Q, R, V)
  if config.newline:
    a = a[..., :-1]
  a = a[:, jnp.argmax(a[0].max(axis=-1))]
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
  wh = bilinear_resize_matrix(masks.shape[-2], g).astype(np.float32)
  ww = bilinear_resize_matrix(masks.shape[-1], g).astype(np.float32)
  small = np.stack([wh @ track @ ww.T for track in masks.astype(np.float32)])  # (P, F, g, g)
  return (small * rela[None]).reshape(masks.shape[0], -1).max(axis=1)


def frame_scores(rela: np.ndarray, masks: np.ndarray) -> np.ndarray:
  """(F, g, g) map upsampled bilinearly to the mask size, × (P, F, H, W) masks, spatial max ->
  (P, F) (`evaluation_llava_att`)."""
  wh = bilinear_resize_matrix(rela.shape[-2], masks.shape[-2]).astype(np.float32)
  ww = bilinear_resize_matrix(rela.shape[-1], masks.shape[-1]).astype(np.float32)
  up = wh @ rela.astype(np.float32) @ ww.T  # (F, H, W)
  return np.stack([(track * up).reshape(len(up), -1).max(axis=-1) for track in masks])


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


# ----------------------------------------------------------------------------- one video


MODES = ('base', 'focus_attr', 'focus_act', 'full')


class Grounder:
  """Grounds sentences in one video's sampled frames with a loaded backend.

  Modes (GroundingConfig.mode):
    base        the released script's runnable path: one map from [Q, caption], no LRA;
    focus_attr  LRA on [caption, attribute Q], map re-read from [attribute Q, caption];
    focus_act   the same with the action sub-query;
    full        the paper's DSTH: the spatial map from the attribute branch (tube choice), the
                temporal map from the action branch (span inside the chosen tube); with
                `tas` the spatial map also averages the time-reversed run.
  `focus_*` are the script's modes as intended; as released they cannot run (wrong arguments,
  the tuned prompt replaced by zeros in `spatial_llm_att`), so the tuned prompt is passed here.
  """

  def __init__(self, backend: Backend, config: GroundingConfig):
    if config.mode not in MODES:
      raise ValueError(f'unknown mode {config.mode!r}; expected one of {MODES}')
    self.backend, self.config = backend, config
    self.start = visual_start(backend.tokenizer, config.template)
    self._static = dict(start=self.start, token_indices=config.gti_tokens or (config.token_index,),
                        answer_ids=(backend.yes_id, backend.no_id))

  def _read(self, visual, prompt, ids, lengths):
    b = self.backend
    return prefill(b.model, b.params, visual, prompt, ids, lengths, **self._static)

  def _encode(self, frames: jax.Array) -> jax.Array:
    return encode_video(self.backend.model, self.backend.params, frames)

  @property
  def llava_config(self) -> LlavaConfig:
    return self.backend.model.config

  def _pack(self, questions: list[str], num_visual: int):
    b = self.backend
    ids, lengths, start = prompts.pack_prompts(b.tokenizer, self.config.template, questions,
                                               num_visual, b.pad_id, self.config.prompt_bucket)
    assert start == self.start
    return jnp.asarray(ids), jnp.asarray(lengths)

  def margins(self, visual: jax.Array, prompt: jax.Array, questions: list[str]) -> np.ndarray:
    """Yes/no margins of questions over visual tokens plus a prompt (for diagnostics, tests)."""
    ids, lengths = self._pack(questions, visual.shape[0])
    return np.asarray(self._read(visual, prompt, ids, lengths)['margin'])

  def tuned_prompt(self, visual: jax.Array, question: str) -> jax.Array:
    """LRA's prompt for one sub-query, optimised against the caption prompt."""
    ids, lengths = self._pack([prompts.CAPTION_PROMPT, question], visual.shape[0])
    c = self.config
    return tune_prompt(self.backend.model, self.backend.params, visual, ids, lengths,
                       steps=c.lra_steps, lr=c.lra_lr, beta=c.lra_beta, **self._static)

  def branch_map(self, visual: jax.Array, tune_question: str | None,
                 read_question: str) -> np.ndarray:
    """(F, g, g) relative map of `read_question`, read with LRA's prompt for `tune_question`
    (zeros when None or lra_steps == 0)."""
    if tune_question is None or not self.config.lra_steps:
      prompt = jnp.zeros_like(visual)
    else:
      prompt = self.tuned_prompt(visual, tune_question)
    ids, lengths = self._pack([read_question, prompts.CAPTION_PROMPT], visual.shape[0])
    att = self._read(visual, prompt, ids, lengths)['attention']
    maps = grounding_map(att, self.llava_config, self.backend.num_frames, self.config.heads)
    return np.asarray(relative_map(maps[0], maps[1]))

  def _maps(self, visual: jax.Array, tune_question: str | None,
            read_question: str) -> tuple[np.ndarray, np.ndarray]:
    """(map, spatial map): with TAS the spatial one averages the run on time-reversed frames
    (visual tokens and prompt reversed by frame, the map flipped back)."""
    rela = self.branch_map(visual, tune_question, read_question)
    if not self.config.tas:
      return rela, rela
    rev = reverse_frames(visual, self.backend.num_frames, self.llava_config.newline)
    return rela, 0.5 * (rela + self.branch_map(rev, tune_question, read_question)[::-1])

  def ground(self, frames: jax.Array, sentence: str, masks: np.ndarray,
             decomposition: dict[str, Any] | None = None) -> dict[str, Any]:
    """Normalised frames (F, S, S, 3), a sentence, tube masks (P, F, H, W) on the sampled frames
    -> {'track': int, 'span': (first, last) sampled-frame indices, 'track_scores' (P,),
    'frame_scores' (F,), 'spatial_map', 'temporal_map' (F, g, g)}."""
    c = self.config
    visual = self._encode(frames)
    full = prompts.yes_no_question(sentence)
    attr, action = prompts.sub_queries(sentence, decomposition)
    if c.mode == 'base':
      temporal, spatial = self._maps(visual, None, full)
    elif c.mode in ('focus_attr', 'focus_act'):
      sub = attr if c.mode == 'focus_attr' else action
      temporal, spatial = self._maps(visual, sub, sub)
    else:
      _, spatial = self._maps(visual, attr, full if c.reread_full_query else attr)
      temporal = self.branch_map(visual, action, full if c.reread_full_query else action)
    scores = track_scores(spatial, masks)
    track = int(np.argmax(scores))
    per_frame = frame_scores(temporal, masks[track:track + 1])[0]
    return {'track': track, 'span': grow_span(per_frame, c.frames_thre), 'track_scores': scores,
            'frame_scores': per_frame, 'spatial_map': spatial, 'temporal_map': temporal}
