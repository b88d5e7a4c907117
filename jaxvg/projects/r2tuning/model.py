"""R²-Tuning (Liu et al., ECCV 2024) on cached multi-layer CLIP features.

One weight-shared R² block refines the last K CLIP layers deepest first (an `nn.scan` over
layers), then a temporal pyramid and shared conv heads predict per-point moment scores and
boundaries. Follows the official code; `official_padding` switches between the
official padded-length behaviour and a padding-invariant one.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import linen as nn

from jaxvg.modules.heads import ConvHead
from jaxvg.modules.layers import Dropout, LayerNorm, Linear, apply_keep_mask, cosine_similarity
from jaxvg.modules.pooling import AdaPooling, query_guided_pooling
from jaxvg.modules.positions import sinusoidal_positions, temporal_endpoint_feature
from jaxvg.modules.pyramid import ConvPyramid
from jaxvg.modules.transformer import DecoderLayer
from jaxvg.projects.r2tuning.fused import masked_max, norm_dropout_linear, relu_norm_dropout


def regress_ranges_for(strides: Sequence[int]) -> list[tuple[float, float]]:
  """Official PointGenerator ranges: (0, s1), (s1, s2), ..., (s_last, inf)."""
  bounds = [0.0] + [float(s) for s in strides[1:]] + [math.inf]
  return list(zip(bounds[:-1], bounds[1:]))


def make_points(num_clips: int, strides: Sequence[int],
                regress_ranges: Sequence[tuple[float, float]] | None = None) -> np.ndarray:
  """Static pyramid points (N, 4) = [position, range_lo, range_hi, stride] in clip units.

  Level s holds ⌊T/s⌋ points at left edges 0, s, 2s, ...; levels with T < s are skipped,
  matching `ConvPyramid`.
  """
  ranges = regress_ranges_for(strides) if regress_ranges is None else regress_ranges
  points = []
  for s, (lo, hi) in zip(strides, ranges):
    if num_clips < s:
      continue
    pos = np.arange(num_clips // s, dtype=np.float32) * s
    points.append(np.stack([pos, np.full_like(pos, lo), np.full_like(pos, hi),
                            np.full_like(pos, s)], axis=1))
  return np.concatenate(points).astype(np.float32)


def level_masks(video_mask: jax.Array, strides: Sequence[int],
                official_padding: bool) -> list[jax.Array]:
  """Validity of each pyramid point, (B, ⌊T/s⌋) per level.

  Official: max_pool(video_mask, s, s), i.e. any clip of the window is valid. Padding-invariant:
  the whole window is valid, i ≤ ⌊n/s⌋ − 1, exactly the points the unpadded sample has.
  """
  t = video_mask.shape[1]
  masks = []
  for s in strides:
    if t < s:
      continue
    windows = video_mask[:, :t // s * s].reshape(video_mask.shape[0], t // s, s)
    masks.append(windows.any(-1) if official_padding else windows.all(-1))
  return masks


IMPLS = ('fused', 'plain')


class InputMap(nn.Module):
  """LN → Dropout → Linear(→C) → ReLU → LN → Dropout → Linear(C→C) (official video/query_map).

  `tail` (…, E) holds extra input features (the TEF) that the official code concatenates to x.
  `impl='plain'` is that composition as written (the reference path). `impl='fused'` computes
  the same numbers faster: the first LN and Linear take the tail as a second part (same
  parameters), so the concatenation of every token is never built, and LN → Dropout → Linear
  and ReLU → LN → Dropout run as single ops with hand-written backward passes
  (`jaxvg.projects.r2tuning.fused`): the video map is the largest computation of the R² step.
  Both draw the same dropout masks. `hidden` stops before the last Linear (`fc1`), for callers
  that only need linear functionals of the output (see `R2Step`).
  """
  dims: int
  in_dims: int   # features of x plus those of tail
  dropout: float
  impl: str = 'fused'

  def setup(self):
    if self.impl not in IMPLS:
      raise ValueError(f'model.impl must be one of {IMPLS}, got {self.impl!r}')
    self.norm0 = LayerNorm()
    self.fc0 = Linear(self.dims, self.in_dims)
    self.norm1 = LayerNorm()
    self.fc1 = Linear(self.dims, self.dims)
    self.drop = Dropout(self.dropout)

  def hidden(self, x: jax.Array, train: bool, tail: jax.Array | None = None) -> jax.Array:
    parts = [x] if tail is None else [x, tail]
    rows = jnp.broadcast_shapes(*(p.shape[:-1] for p in parts))
    keep_masks = [self.drop.keep_mask(rows + p.shape[-1:], not train) for p in parts]
    if self.impl == 'plain':
      joined = jnp.concatenate([jnp.broadcast_to(p, rows + p.shape[-1:]) for p in parts], -1)
      x = self.norm0(joined)
      if train and self.dropout:
        x = apply_keep_mask(x, jnp.concatenate(keep_masks, -1), self.dropout)
      x = self.norm1(jax.nn.relu(self.fc0(x)))
      return self.drop(x, not train)
    scale, bias = self.norm0.affine(self.in_dims)
    x = norm_dropout_linear(parts, keep_masks, scale, bias, self.fc0.kernel, self.fc0.bias,
                            rate=self.dropout, epsilon=self.norm0.epsilon)
    keep_mask = self.drop.keep_mask(x.shape, not train)
    scale, bias = self.norm1.affine(self.dims)
    return relu_norm_dropout(x, keep_mask, scale, bias, rate=self.dropout,
                             epsilon=self.norm1.epsilon)

  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    return self.fc1(self.hidden(x, train))


class R2Step(nn.Module):
  """One step of the R² recurrence (one CLIP layer); its weights are shared by all steps.

  Query-modulated spatial pooling (single head, un-projected values, query residual, max over
  query tokens, gated by tanh(scale_k)), gated fusion with the previous state (sigmoid(gate_k)),
  then the temporal decoder layer.
  """
  dims: int
  num_heads: int
  ffn_ratio: int
  dropout: float
  droppath: float
  official_padding: bool
  train: bool
  impl: str = 'fused'

  @nn.compact
  def __call__(self, h: jax.Array, xs: tuple[jax.Array, ...],
               consts: tuple[Any, ...]) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """h (B, T, C); xs = (step j (), scale (), gate (), use_gate ());
    consts = (video (B,T,K,P,Dv), query (B,L,K,Dq), tef (B,T,1,2) or None, video_mask (B,T),
    query_mask (B,L), pe (B,T,C)). Returns the new h and (CLS after video_map (B,T,C), mapped
    query (B,L,C)).

    Step j reads the j-th deepest layer in place (index K−1−j of the inputs' layer axis) instead
    of scanning over a (K, ...) copy of the video, which would cost a transpose of every token.
    """
    j, scale, gate, use_gate = xs
    video, query, tef, video_mask, query_mask, pe = consts
    video = jax.lax.dynamic_index_in_dim(video, video.shape[2] - 1 - j, axis=2, keepdims=False)
    query = jax.lax.dynamic_index_in_dim(query, query.shape[2] - 1 - j, axis=2, keepdims=False)
    tef_dims = 0 if tef is None else tef.shape[-1]
    video_map = InputMap(self.dims, video.shape[-1] + tef_dims, self.dropout, self.impl,
                         name='video_map')
    q = InputMap(self.dims, query.shape[-1], self.dropout, self.impl, name='query_map')(
        query, self.train)
    q_key = Linear(self.dims, self.dims, name='q_map')(q)
    v_map = Linear(self.dims, self.dims, name='v_map')
    query_valid = None if self.official_padding else query_mask   # official: all L tokens
    if self.impl == 'plain':
      # The official pooling as written: project every visual token, attend, pool, max.
      v = video_map.fc1(video_map.hidden(video, self.train, tef))
      cls = v[:, :, 0]
      pooled = query_guided_pooling(q_key, v_map(v), v, q, query_valid)
      return self._fuse_and_decode(h, cls, pooled, q, scale, gate, use_gate, pe, video_mask,
                                   query_mask)

    # The official pooling projects every visual token, v = fc1(a) (B,T,P,C), then computes
    # logits q_key·v_map(v) and att·v. Both are linear in v, and att sums to 1 over P, so they
    # are computed on the hidden a instead: logits through the duals of v_map and fc1 (on the
    # B·L query rows), pooled = fc1(att·a) (on B·T·L rows). The same numbers re-associated, at
    # ~1/3 fewer FLOPs in fc1 and without the (B,T,P,C) v in memory.
    a = video_map.hidden(video, self.train, tef)
    cls = video_map.fc1(a[:, :, 0])
    key, offset = v_map.dual(q_key)
    key, fc1_offset = video_map.fc1.dual(key)
    logits = jnp.einsum('bld,btpd->btlp', key, a) + (offset + fc1_offset)[:, None, :, None]
    att = jax.nn.softmax(logits / self.dims**0.5, axis=-1)
    pooled = video_map.fc1(jnp.einsum('btlp,btpc->btlc', att, a)) + q[:, None]
    pooled = masked_max(pooled, None if query_valid is None else query_valid[:, None, :, None],
                        axis=2)
    return self._fuse_and_decode(h, cls, pooled, q, scale, gate, use_gate, pe, video_mask,
                                 query_mask)

  def _fuse_and_decode(self, h, cls, pooled, q, scale, gate, use_gate, pe, video_mask,
                       query_mask):
    """Gated fusion with the previous state, then the temporal decoder layer."""
    e = cls + jnp.tanh(scale) * pooled
    g = jax.nn.sigmoid(gate)
    e = jnp.where(use_gate, g * e + (1 - g) * h, e)
    h = DecoderLayer(self.dims, self.num_heads, self.ffn_ratio, self.droppath,
                     name='tem')(e, q, pe, video_mask, query_mask, self.train)
    return h, (cls, q)


class R2Block(nn.Module):
  """The R² recurrence over the last K layers, deepest first, as an `nn.scan` with shared weights.

  Per-layer scalars `scale` (K,) and `gate` (K−1,) are indexed by the official layer index i
  (K−1 … 0), so they line up with official checkpoints. `config.scan_unroll` unrolls the scan by
  that factor (0, the default: all K steps; 1: a rolled loop); the same parameters and outputs,
  a different compile-time/run-time trade-off.
  """
  config: Any

  @nn.compact
  def __call__(self, video: jax.Array, query: jax.Array, video_mask: jax.Array,
               query_mask: jax.Array, train: bool):
    """video (B,T,K,P,Dv), query (B,L,K,Dq) -> h (B,T,C), coll_v (K,B,T,C), coll_q (K,B,L,C)."""
    cfg = self.config
    k, dims = cfg.num_layers, cfg.dims
    b, t = video.shape[:2]
    official = cfg.official_padding and train
    lengths = (jnp.full((b,), t, jnp.int32) if official
               else video_mask.sum(-1).astype(jnp.int32))
    # The TEF is the same for every token of a clip: (B, T, 1, 2), broadcast inside video_map.
    tef = temporal_endpoint_feature(lengths, t)[:, :, None] if cfg.use_tef else None
    pe = sinusoidal_positions(lengths, t, dims)

    scale = self.param('scale', nn.initializers.zeros, (k,))
    gate = self.param('gate', nn.initializers.zeros, (k - 1,))
    # Step j processes official layer i = K−1−j (the j-th deepest of the last K); step 0 has no
    # previous state to gate with.
    xs = (jnp.arange(k),
          scale[::-1],
          jnp.concatenate([jnp.zeros((1,)), gate[::-1]]),
          jnp.arange(k) > 0)
    step = nn.scan(R2Step, variable_broadcast='params',
                   split_rngs={'params': False, 'dropout': True, 'droppath': True},
                   in_axes=(0, nn.broadcast), length=k, unroll=cfg.scan_unroll or k)
    h0 = jnp.zeros((b, t, dims), jnp.float32)
    h, (coll_v, coll_q) = step(dims, cfg.num_heads, cfg.ffn_ratio, cfg.dropout, cfg.droppath,
                               official, train, cfg.get('impl', 'fused'), name='step')(
                                   h0, xs, (video, query, tef, video_mask, query_mask, pe))
    return h, coll_v, coll_q


def merge_saliency(level_scores: Sequence[jax.Array], strides: Sequence[int],
                   lengths: jax.Array, num_clips: int) -> jax.Array:
  """Official inference saliency: per level, σ-scores repeated ⌊n/N_s⌋ times and right-padded
  with the last value up to n clips, then the max over levels. (B, T), zero beyond n.

  level_scores: (B, ⌊T/s⌋) per present level; lengths (B,) the length n used per sample.
  """
  t = jnp.arange(num_clips)[None, :]
  merged = jnp.full((lengths.shape[0], num_clips), -jnp.inf)
  present = [s for s in strides if num_clips >= s]
  for s, score in zip(present, level_scores):
    count = lengths // s                                    # N_s the sample would have, (B,)
    rep = lengths // jnp.maximum(count, 1)
    idx = jnp.minimum(t // rep[:, None], jnp.maximum(count, 1)[:, None] - 1)
    level = jnp.take_along_axis(score, jnp.minimum(idx, score.shape[1] - 1), axis=1)
    merged = jnp.maximum(merged, jnp.where((count > 0)[:, None], level, -jnp.inf))
  valid = (t < lengths[:, None]) & jnp.isfinite(merged)
  return jnp.where(valid, merged, 0.0)


class R2Tuning(nn.Module):
  """The full model: `apply({'params': p}, batch, train, rngs=...)` -> outputs dict.

  Outputs: h (B,T,C), the R² block's output as the official code leaves it after the pyramid
  (ReLU'd with stride 1, see `ConvPyramid`); query_emb (B,C); coll_v (K,B,T,C) and coll_q
  (K,B,L,C) in the order [deepest..shallowest]; coll_q_emb (K,B,C) AdaPooled; cls_logits (B,N); reg (B,N,2) (with the
  coord head); point_mask (B,N); saliency (B,T); video_mask (B,T).
  """
  config: ml_collections.ConfigDict

  @nn.compact
  def __call__(self, batch: dict[str, jax.Array], train: bool = False) -> dict[str, jax.Array]:
    cfg = self.config
    video_mask = batch['video_mask'].astype(bool)
    query_mask = batch['query_mask'].astype(bool)
    b, t = video_mask.shape
    h, coll_v, coll_q = R2Block(cfg, name='adapter')(
        batch['video'], batch['query'], video_mask, query_mask, train)
    # Official padding is a training behaviour only: the official code validates one unpadded
    # sample at a time, which is what the padding-invariant path computes for any batch.
    official = cfg.official_padding and train
    if not official:
      h = jnp.where(video_mask[..., None], h, 0.0)

    strides = tuple(cfg.strides)
    # From here on h is ReLU(h) (official in-place ReLU of the stride-1 level): the saliency
    # cosine and the saliency loss read it.
    levels, h = ConvPyramid(cfg.dims, strides, name='pyramid')(h)
    masks = level_masks(video_mask, strides, official)
    head_masks = [None] * len(masks) if official else masks
    class_head = ConvHead(cfg.dims, 1, name='class_head')
    cls_logits = jnp.concatenate(
        [class_head(x, m)[..., 0] for x, m in zip(levels, head_masks)], axis=1)

    pooling = AdaPooling(cfg.dims, name='pooling')
    query_emb = pooling(coll_q[-1], query_mask)
    outputs = dict(
        h=h, query_emb=query_emb, coll_v=coll_v, coll_q=coll_q,
        coll_q_emb=pooling(coll_q, jnp.broadcast_to(query_mask, coll_q.shape[:-1])),
        cls_logits=cls_logits, point_mask=jnp.concatenate(masks, axis=1), video_mask=video_mask)

    # Official R2Tuning always holds `coef` (one per stride), even without the coord head.
    coef = self.param('coef', nn.initializers.ones, (len(strides),))
    if cfg.use_coord_head:
      coord_head = ConvHead(cfg.dims, 2, name='coord_head')
      outputs['reg'] = jnp.concatenate(
          [jnp.exp(coord_head(x, m)) * coef[i]
           for i, (x, m) in enumerate(zip(levels, head_masks))], axis=1)

    lengths = jnp.full((b,), t) if official else video_mask.sum(-1)
    scores = jnp.split(jax.nn.sigmoid(cls_logits), np.cumsum([x.shape[1] for x in levels])[:-1],
                       axis=1)
    saliency = merge_saliency(scores, strides, lengths, t)
    if cfg.merge_cls_sal:
      saliency = saliency * cosine_similarity(h, query_emb[:, None])
    outputs['saliency'] = saliency
    return outputs
