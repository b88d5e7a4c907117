"""SDST (Pujol-Perich et al., ICCV 2025): the sparse-dense side-tuner, built from the paper.

One weight-shared SDST step runs recurrently over the last K layers of a frozen backbone
(`nn.scan`, like R²-Tuning's block), refining three states:
  D (B, T, F)  the dense clip stream (highlights): β-gated fusion of the layer's projected clip
               features, then cross-attention to the text → temporal self-attention → FFN;
  H (B, M, F)  the hidden states of M decoder queries (moments): cross-attention to the text →
               self-attention among queries → video attention (RDSA by default) → FFN;
  R (B, M, 2)  the queries' reference spans (centre, width) in [0, 1], refined at every step
               through inverse-sigmoid space, with a stop-gradient between steps.
Heads shared by every step give a foreground logit, a span and an actionness logit per query, and a
saliency per clip (cosine of D against the pooled text): every step is supervised (deep
supervision). No official code exists; each choice the paper leaves open is a named field of
`config.model` (configs/sdst/*.py, docs/sdst.md).

Outputs are batch-major so that evaluation can gather them along the data axis: per-step arrays
carry the step axis second, (B, K, ...), in the order the steps ran (the last is the prediction).
"""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from jaxvg.modules.anchor_decoder import inverse_sigmoid
from jaxvg.modules.attention import MultiHeadAttention
from jaxvg.modules.deformable import DeformableSpanAttention, ReferenceDeformableSelfAttention
from jaxvg.modules import init
from jaxvg.modules.droppath import DropPath
from jaxvg.modules.layers import Dropout, LayerNorm, Linear
from jaxvg.modules.pooling import AdaPooling, query_guided_pooling
from jaxvg.modules.positions import sinusoidal_positions, temporal_endpoint_feature
from jaxvg.modules.transformer import DecoderLayer, FeedForward
from jaxvg.projects.sdst import denoising as dn
from jaxvg.projects.sdst import proposals
from jaxvg.projects.sdst.losses import normalized_windows

VIDEO_ATTENTIONS = ('rdsa', 'deformable', 'cross')
CLIP_POOLINGS = ('cls', 'mean', 'query')


def span_sine_embedding(spans: jax.Array, dims: int, temperature: float = 10000.0) -> jax.Array:
  """DAB-DETR sine embedding of (centre, width): dims/2 channels each (sin/cos interleaved)."""
  half = dims // 2
  freq = temperature ** (2 * (jnp.arange(half) // 2) / half)
  angle = spans[..., None] * (2 * math.pi) / freq                      # (..., 2, half)
  emb = jnp.where(jnp.arange(half) % 2 == 0, jnp.sin(angle), jnp.cos(angle))
  return emb.reshape(spans.shape[:-1] + (dims,))


class InputProjection(nn.Module):
  """LN → Dropout → Linear(→F) → ReLU → LN → Dropout → Linear(F→F) (R²-Tuning's input maps,
  [assumed] for SDST; the report §2.2)."""
  dims: int
  dropout: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    drop = Dropout(self.dropout)
    x = drop(LayerNorm(name='norm0')(x), not train)
    x = nn.relu(Linear(self.dims, x.shape[-1], name='fc0')(x))
    x = drop(LayerNorm(name='norm1')(x), not train)
    return Linear(self.dims, self.dims, name='fc1')(x)


class Mlp(nn.Module):
  """Linear → ReLU → … → Linear (DETR's box MLP); `zero_last`: the last layer starts at zero
  (Deformable DETR's box refinement: each step starts from its reference span)."""
  dims: int
  out_dims: int
  num_layers: int
  zero_last: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(self.num_layers - 1):
      x = nn.relu(Linear(self.dims, x.shape[-1], name=f'fc{i}')(x))
    name = f'fc{self.num_layers - 1}'
    if self.zero_last:
      return nn.Dense(self.out_dims, kernel_init=nn.initializers.zeros, name=name)(x)
    return Linear(self.out_dims, x.shape[-1], name=name)(x)


class SparseLayer(nn.Module):
  """The decoder queries' update: text CA → query SA → video attention → FFN, each post-norm
  `H = LN(H + DropPath(f(H)))`. The query position is an MLP of the span's sine embedding
  (DAB-DETR, [assumed]), added to the attention queries and self-attention keys."""
  config: Any
  train: bool

  @nn.compact
  def __call__(self, h: jax.Array, spans: jax.Array, text: jax.Array, text_mask: jax.Array,
               dense: jax.Array, dense_mask: jax.Array, dense_pe: jax.Array,
               query_att_mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array | None]:
    cfg = self.config
    dims, heads = cfg.dims, cfg.num_heads
    drop = DropPath(cfg.droppath)
    residual = lambda x, d, name: LayerNorm(name=name)(x + drop(d, not self.train))  # noqa: E731
    pos = (Mlp(dims, dims, 2, name='query_pos')(span_sine_embedding(spans, dims))
           if cfg.query_pos == 'span_sine' else jnp.zeros_like(h))
    h = residual(h, MultiHeadAttention(dims, heads, name='cross_att')(h + pos, text, text,
                                                                     text_mask), 'cross_att_norm')
    q = h + pos
    h = residual(h, MultiHeadAttention(dims, heads, name='self_att')(q, q, h, query_att_mask),
                 'self_att_norm')
    positions = None
    if cfg.video_attention == 'rdsa':
      out, positions = ReferenceDeformableSelfAttention(
          dims, cfg.deform_heads, cfg.deform_points, cfg.rdsa_kernel_size, cfg.offset_init,
          name='video_att')(spans, dense, dense_mask)
    elif cfg.video_attention == 'deformable':
      out, positions = DeformableSpanAttention(
          dims, cfg.deform_heads, cfg.deform_points, cfg.offset_init, name='video_att')(
              h + pos, spans, jnp.where(dense_mask[..., None], dense, 0.0), dense_mask.sum(-1))
    elif cfg.video_attention == 'cross':
      out = MultiHeadAttention(dims, heads, name='video_att')(h + pos, dense + dense_pe, dense,
                                                              dense_mask)
    else:
      raise ValueError(f'config.model.video_attention must be one of {VIDEO_ATTENTIONS}, got '
                       f'{cfg.video_attention!r}')
    h = residual(h, out, 'video_att_norm')
    h = residual(h, FeedForward(dims, cfg.ffn_ratio, name='ffn')(h), 'ffn_norm')
    return h, positions


class SDSTStep(nn.Module):
  """One step of the recurrence (one backbone layer); its weights are shared by every step."""
  config: Any
  train: bool

  @nn.compact
  def __call__(self, carry: tuple[jax.Array, jax.Array, jax.Array], xs: tuple[jax.Array, ...],
               consts: tuple[Any, ...]):
    """carry = (D (B,T,F), H (B,M,F), R (B,M,2)); xs = (layer index (), β (), use β (),
    pooling scale ()); consts = (video (B,T,K,Dv) or CLIP tokens (B,T,K,P,Dv) for
    `clip_pooling='query'`, query (B,L,K,Dq), tef (B,T,2) or None, video_mask (B,T),
    query_mask (B,L), pe (B,T,F), the decoder queries' self-attention mask (B,Q,Q) or None:
    Q = M matching queries, then any denoising ones).
    Returns the new carry and this step's predictions."""
    cfg = self.config
    dense, hidden, spans = carry
    layer, beta, use_beta, pool_scale = xs
    video, query, tef, video_mask, query_mask, pe, query_att_mask = consts
    video = jax.lax.dynamic_index_in_dim(video, layer, axis=2, keepdims=False)
    query = jax.lax.dynamic_index_in_dim(query, layer, axis=2, keepdims=False)
    t = InputProjection(cfg.dims, cfg.dropout, name='query_map')(query, self.train)
    if tef is not None:
      tef = tef.astype(video.dtype)
      if video.ndim == 4:                                   # the clip's TEF on each of its tokens
        tef = jnp.broadcast_to(tef[:, :, None], video.shape[:3] + tef.shape[-1:])
      video = jnp.concatenate([video, tef], axis=-1)
    v = InputProjection(cfg.dims, cfg.dropout, name='video_map')(video, self.train)
    if v.ndim == 4:
      # clip_pooling='query' [assumed, not SDST's]: the mapped CLS plus R²-Tuning's query-guided
      # pooling of the mapped tokens, scaled by tanh(s_l) (s_l from model.pool_scale_init; 0, the
      # default, starts as CLS pooling).
      pooled = query_guided_pooling(Linear(cfg.dims, cfg.dims, name='pool_query_key')(t),
                                    Linear(cfg.dims, cfg.dims, name='pool_token_key')(v), v, t,
                                    query_mask)
      v = v[:, :, 0] + jnp.tanh(pool_scale) * pooled

    # Dense stream: D := β·D + (1 − β)·V (β raw or through a sigmoid), then CA → SA → FFN.
    gate = jax.nn.sigmoid(beta) if cfg.beta_gate == 'sigmoid' else beta
    fused = jnp.where(use_beta, gate * dense + (1 - gate) * v, v)
    new_dense = DecoderLayer(cfg.dims, cfg.num_heads, cfg.ffn_ratio, cfg.droppath,
                             cfg.dense_pre_norm, name='dense')(fused, t, pe, video_mask,
                                                              query_mask, self.train)
    new_dense = jnp.where(video_mask[..., None], new_dense, 0.0)
    step = {}
    if cfg.query_selection == 'dense':
      # [assumed, not SDST's] DINO's mixed query selection (jaxvg/projects/sdst/proposals.py):
      # the first step's references are the spans of the clips the proposal head scores best.
      step['proposal_logits'], step['proposal_spans'] = proposals.ProposalHead(
          cfg.dims, prior_logit(cfg.class_prior), name='proposal_head')(
              new_dense, video_mask.sum(-1))
      m = cfg.num_queries
      selected = proposals.select(step['proposal_logits'], step['proposal_spans'], video_mask,
                                  spans[:, :m])
      spans = jnp.where(use_beta, spans, jnp.concatenate([selected, spans[:, m:]], axis=1))
    elif cfg.query_selection != 'learned':
      raise ValueError(f"config.model.query_selection must be 'learned' or 'dense', got "
                       f'{cfg.query_selection!r}')

    # Sparse stream; the video attention reads D^{l+1} ('updated') or the fused D^l ('fused').
    evidence = new_dense if cfg.rdsa_dense == 'updated' else fused
    hidden, positions = SparseLayer(cfg, self.train, name='sparse')(
        hidden, spans, t, query_mask, evidence, video_mask, pe, query_att_mask)

    # Shared heads: foreground logit, span refinement in inverse-sigmoid space, actionness.
    logits = nn.Dense(1, kernel_init=init.torch_kernel_init,
                      bias_init=nn.initializers.constant(prior_logit(cfg.class_prior)),
                      name='class_head')(hidden)[..., 0]
    delta = Mlp(cfg.dims, 2, cfg.span_head_layers, cfg.span_head_zero_init,
                name='span_head')(hidden)
    new_spans = jax.nn.sigmoid(inverse_sigmoid(spans) + delta)
    actionness = Linear(1, cfg.dims, name='actionness_head')(hidden)[..., 0]
    if cfg.text_pooling == 'mean':
      weights = query_mask.astype(t.dtype)
      text_emb = (t * weights[..., None]).sum(1) / jnp.maximum(weights.sum(1), 1.0)[:, None]
    elif cfg.text_pooling == 'attention':
      text_emb = AdaPooling(cfg.dims, name='text_pooling')(t, query_mask)
    else:
      raise ValueError(f"config.model.text_pooling must be 'mean' or 'attention', got "
                       f'{cfg.text_pooling!r}')
    saliency = jnp.where(video_mask, masked_cosine(new_dense, text_emb[:, None]), 0.0)
    next_spans = jax.lax.stop_gradient(new_spans) if cfg.detach_spans else new_spans
    step.update(logits=logits, spans=new_spans, actionness=actionness, saliency=saliency,
                video_emb=v, text_emb=text_emb)
    if positions is not None:
      step['sampling_positions'] = positions
    return (new_dense, hidden, next_spans), step


class SDST(nn.Module):
  """The full model: `apply({'params': p}, batch, train=..., rngs={'dropout', 'droppath'})`.

  batch: video (B,T,K,Dv) pooled clip features, or (B,T,K,P,Dv) tokens pooled here by
  `model.clip_pooling` (CLS, mean, or in each step under the query); video_mask (B,T);
  query (B,L,K,Dq); query_mask (B,L); in training with `model.dn_groups` also windows (B,G,2)
  and window_mask (B,G) (the denoising queries' GT).
  Outputs: logits, actionness (B,K,M); spans (B,K,M,2) (centre, width) in [0,1] of the true
  length; saliency_steps (B,K,T); saliency (B,T) (last step); video_emb (B,K,T,F); text_emb
  (B,K,F); dense (B,T,F); video_mask (B,T); sampling_positions (B,K,M,heads,points) with a
  deformable video attention. With denoising queries (training only): dn_logits, dn_actionness
  (B,K,N), dn_spans (B,K,N,2), and their GT index dn_index (N,) and dn_positive (N,). With
  `model.query_selection='dense'`: proposal_logits (B,K,T), proposal_spans (B,K,T,2).
  """
  config: ml_collections.ConfigDict

  @nn.compact
  def __call__(self, batch: dict[str, jax.Array], train: bool = False) -> dict[str, jax.Array]:
    cfg = self.config
    video_mask = batch['video_mask'].astype(bool)
    query_mask = batch['query_mask'].astype(bool)
    video = pool_clip_tokens(batch['video'], cfg.clip_pooling)   # 'query': pooled per step
    query = batch['query']
    b, t = video_mask.shape
    k, m, dims = cfg.num_layers, cfg.num_queries, cfg.dims
    if video.shape[2] != k or query.shape[2] != k:
      raise ValueError(f'config.model.num_layers={k}, but the batch holds {video.shape[2]} video '
                       f'and {query.shape[2]} query layers')
    lengths = video_mask.sum(-1)
    tef = temporal_endpoint_feature(lengths, t) if cfg.use_tef else None
    pe = sinusoidal_positions(lengths, t, dims)

    if cfg.layer_order not in ('deep_first', 'shallow_first'):
      raise ValueError("config.model.layer_order must be 'deep_first' or 'shallow_first', got "
                       f'{cfg.layer_order!r}')
    beta = self.param('beta', nn.initializers.zeros, (k - 1,))
    # One pooling scale per step (R²-Tuning's per-layer `scale`), only for query-guided pooling.
    pool_scale = (self.param('pool_scale', nn.initializers.constant(cfg.pool_scale_init), (k,))
                  if video.ndim == 5
                  else jnp.zeros((k,)))
    # Step j reads layer index K−1−j (deepest first) or j of the inputs' layer axis.
    order = jnp.arange(k)[::-1] if cfg.layer_order == 'deep_first' else jnp.arange(k)
    xs = (order, jnp.concatenate([jnp.zeros((1,)), beta]), jnp.arange(k) > 0, pool_scale)

    hidden0 = self.param('query_hidden', nn.initializers.normal(0.02), (m, dims))
    spans0 = self.param('query_spans', _uniform_span_logits, (m, 2))
    hidden = jnp.broadcast_to(hidden0, (b, m, dims))
    spans = jnp.broadcast_to(jax.nn.sigmoid(spans0), (b, m, 2))
    query_att_mask, denoising = None, {}
    if cfg.dn_groups:
      # [assumed, not SDST's] DN-DETR's denoising queries (jaxvg/projects/sdst/denoising.py):
      # one learned content vector, started at noised GT spans, in training only.
      dn_hidden = self.param('dn_hidden', nn.initializers.normal(0.02), (dims,))
      if train:
        dn_spans, index, positive = dn.noised_spans(
            self.make_rng('dropout'), normalized_windows(batch), cfg.dn_groups, cfg.dn_noise,
            cfg.dn_negatives)
        slots = jnp.asarray(batch['window_mask'], bool)[:, index]
        hidden = jnp.concatenate(
            [hidden, jnp.broadcast_to(dn_hidden, (b, index.shape[0], dims))], axis=1)
        spans = jnp.concatenate([spans, dn_spans], axis=1)
        query_att_mask = dn.attention_mask(m, cfg.dn_groups, slots)
        denoising = dict(dn_index=index, dn_positive=positive)
    carry = (jnp.zeros((b, t, dims), jnp.float32), hidden, spans)
    consts = (video, query, tef, video_mask, query_mask, pe, query_att_mask)
    if cfg.scan:
      step = nn.scan(SDSTStep, variable_broadcast='params',
                     split_rngs={'params': False, 'dropout': True, 'droppath': True},
                     in_axes=(0, nn.broadcast), length=k, unroll=cfg.scan_unroll or k)
      (dense, _, _), steps = step(cfg, train, name='step')(carry, xs, consts)
    else:
      # The same recurrence unrolled in Python: one module shared by every call (the same
      # parameters as the scan), for debugging and for checking the scan against.
      step = SDSTStep(cfg, train, name='step')
      outs = []
      for j in range(k):
        carry, out = step(carry, jax.tree.map(lambda x: x[j], xs), consts)
        outs.append(out)
      dense = carry[0]
      steps = jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
    outputs = {name: jnp.moveaxis(value, 0, 1) for name, value in steps.items()}
    if denoising:
      for name in ('logits', 'actionness', 'spans'):
        outputs[name], outputs[f'dn_{name}'] = outputs[name][:, :, :m], outputs[name][:, :, m:]
      if 'sampling_positions' in outputs:
        outputs['sampling_positions'] = outputs['sampling_positions'][:, :, :m]
      outputs.update(denoising)
    outputs['saliency_steps'] = outputs.pop('saliency')
    outputs['saliency'] = outputs['saliency_steps'][:, -1]
    outputs.update(dense=dense, video_mask=video_mask)
    return outputs


def prior_logit(prior: float) -> float:
  """The class-head bias at which σ(logit) = `prior` (focal-loss detectors start every query as
  background); 0 for prior 0.5."""
  if not 0 < prior < 1:
    raise ValueError(f'config.model.class_prior must be in (0, 1), got {prior}')
  return -math.log((1 - prior) / prior)


def masked_cosine(a: jax.Array, b: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Cosine similarity along the last axis whose gradient stays finite at zero vectors.

  Padded clips and the pooled text of a padding sample are exactly zero here; the norm's
  gradient there is 0/0, which `jnp.where` masks in value but not in gradient (NaN · 0).
  """
  norm2 = jnp.square(a).sum(-1) * jnp.square(b).sum(-1)
  return (a * b).sum(-1) / jnp.sqrt(jnp.maximum(norm2, eps * eps))


def _uniform_span_logits(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
  """Initial reference spans U(0, 1) in (centre, width), stored as logits (DAB-DETR)."""
  return inverse_sigmoid(jax.random.uniform(key, shape, dtype))


def pool_clip_tokens(video: jax.Array, pooling: str) -> jax.Array:
  """(B,T,K,P,D) token features -> (B,T,K,D) by 'cls' (token 0) or 'mean'; (B,T,K,D) passes.

  'query' keeps the tokens: each step pools its layer's mapped tokens under the query
  (`SDSTStep`), so it needs token features.
  """
  if pooling not in CLIP_POOLINGS:
    raise ValueError(f'config.model.clip_pooling must be one of {CLIP_POOLINGS}, got {pooling!r}')
  if video.ndim == 4:
    if pooling == 'query':
      raise ValueError("config.model.clip_pooling='query' pools CLIP tokens, but the batch holds "
                       'one pooled vector per clip and layer (model.num_tokens=0); use a token '
                       "source (CLIP caches or frames) or 'cls'/'mean'")
    return video
  if pooling == 'cls':
    return video[:, :, :, 0]
  if pooling == 'mean':
    return video.astype(jnp.float32).mean(3)
  return video
