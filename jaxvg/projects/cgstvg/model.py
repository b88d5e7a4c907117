"""CG-STVG (Gu et al., CVPR 2024; HengLan/CGSTVG) in Flax: ResNet C5 + (frozen, precomputed)
Video-Swin stage-4 map + RoBERTa text, a per-frame multimodal encoder, and two decoders with one
query per frame: the spatial decoder refines a box anchor per layer and feeds instance context
(RoI features of confident frames) to the next layer; the temporal decoder predicts start/end
logits and actioness.

Batched and static-shaped (the official code runs one video at a time): frames are padded to T
(`frame_mask`) and to one H x W (`pixel_mask`), text to L (`text_mask`). Parameter names follow
the official state dict (see `convert.py`). Batch keys (those of `jaxvg.data.tube_examples`):
  frames (B, T, H, W, 3) uint8 RGB (normalised here) or float (already normalised), or
    c5 (B, T, h, w, 2048) from a feature cache (with grid_mask (B, h, w) if padded);
  pixel_mask (B, H, W) (optional: all valid); frame_mask (B, T);
  swin (B, T, h, w, model.swin_dims): the frozen Video-Swin's last map, Video-Swin-T's stage 4
    (when `model.use_swin`; on the C5 grid);
  tokens / text_mask (B, L): RoBERTa token ids;
  text_states (B, L, 768): the frozen RoBERTa's states from a feature cache (`model.text.frozen`),
    read instead of running the tower on `tokens`;
  boxes (B, T, 4) normalised (cx, cy, w, h), box_mask and in_span (B, T): read ONLY for the
  ground-truth context selection of training, never at inference.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from jaxvg.losses.boxes import cxcywh_to_xyxy, paired_giou
from jaxvg.modules.anchor_decoder import (BERT_LN_EPS, MLP, AnchorDecoderLayer,
                                          post_norm_ffn)
from jaxvg.modules.attention import TorchMultiheadAttention
from jaxvg.modules.layers import LayerNorm
from jaxvg.modules.positions import anchor_sine_embedding, sequence_sine_table, sine_positions_2d
from jaxvg.modules.resnet import RESNET_STAGES, ResNet
from jaxvg.modules.roberta import Roberta, RobertaArch

def resnet_module(model_config: ml_collections.ConfigDict, name: str | None = None) -> ResNet:
  """The config's ResNet: `model.resnet` blocks, `model.resnet_width`, `model.resnet_dilation`."""
  return ResNet(RESNET_STAGES[model_config.resnet], model_config.resnet_width,
                model_config.resnet_dilation, name=name)


def roberta_arch(config: ml_collections.ConfigDict) -> RobertaArch:
  t = config.text
  return RobertaArch(vocab_size=t.vocab_size, hidden=t.hidden, layers=t.layers, heads=t.heads,
                     intermediate=t.intermediate, max_positions=t.max_positions,
                     type_vocab_size=t.type_vocab_size, pad_token_id=t.pad_token_id)


def normalise_frames(frames: jax.Array, pixel_mask: jax.Array,
                     data: ml_collections.ConfigDict) -> jax.Array:
  """(B, T, H, W, 3) uint8 -> ImageNet-normalised float32, zero outside `pixel_mask` (B, H, W)
  (the official normalises, then pads with zeros)."""
  frames = (frames.astype(jnp.float32) / 255 - jnp.asarray(data.pixel_mean)) / jnp.asarray(
      data.pixel_std)
  return jnp.where(pixel_mask[:, None, :, :, None], frames, 0)


class FeatureResizer(nn.Module):
  """Linear → LayerNorm (eps 1e-12) → Dropout: text states to the model width."""
  dims: int
  dropout: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    x = LayerNorm(BERT_LN_EPS, name='layer_norm')(nn.Dense(self.dims, name='fc')(x))
    return nn.Dropout(self.dropout, deterministic=deterministic)(x)


class EncoderLayer(nn.Module):
  """Post-norm self-attention layer over one frame's tokens (positions on queries and keys)."""
  dims: int
  heads: int
  ffn_dims: int
  dropout: float

  @nn.compact
  def __call__(self, x: jax.Array, pos: jax.Array, mask: jax.Array,
               deterministic: bool) -> jax.Array:
    drop = nn.Dropout(self.dropout, deterministic=deterministic)
    qk = x + pos
    att = TorchMultiheadAttention(self.dims, self.heads, self.dropout, name='self_attn')(
        qk, qk, x, mask, deterministic)
    x = LayerNorm(name='norm1')(x + drop(att))
    return post_norm_ffn(x, self.dims, self.ffn_dims, drop, 'norm2')


class TimeDecoderLayer(nn.Module):
  """Self-attention across frames (sine time embedding on q/k), cross-attention of each frame's
  query to its own frame's tokens, FFN; post-norm."""
  dims: int
  heads: int
  ffn_dims: int
  dropout: float

  @nn.compact
  def __call__(self, tgt: jax.Array, time_embed: jax.Array, frame_mask: jax.Array,
               memory: jax.Array, memory_pos: jax.Array, memory_mask: jax.Array,
               deterministic: bool) -> jax.Array:
    drop = nn.Dropout(self.dropout, deterministic=deterministic)
    qk = tgt + time_embed
    att = TorchMultiheadAttention(self.dims, self.heads, self.dropout, name='self_attn')(
        qk, qk, tgt, frame_mask, deterministic)
    tgt = LayerNorm(name='norm1')(tgt + drop(att))
    att = TorchMultiheadAttention(self.dims, self.heads, self.dropout, name='cross_attn_image')(
        tgt[:, :, None], memory + memory_pos, memory, memory_mask, deterministic)[:, :, 0]
    tgt = LayerNorm(name='norm3')(tgt + drop(att))
    return post_norm_ffn(tgt, self.dims, self.ffn_dims, drop, 'norm4')


def tube_motion(boxes: jax.Array, frame_mask: jax.Array) -> jax.Array:
  """(B, T, 4) boxes -> (B, T, 8): each frame's box change from the previous frame and to the
  next one, zero where that neighbour is padding or beyond the clip (`frame_mask` (B, T))."""
  before = frame_mask[:, :-1] & frame_mask[:, 1:]                # (B, T - 1): both frames valid
  step = jnp.where(before[..., None], boxes[:, 1:] - boxes[:, :-1], 0)
  pad = jnp.zeros_like(step[:, :1])
  return jnp.concatenate([jnp.concatenate([pad, step], 1),       # from the previous frame
                          jnp.concatenate([step, pad], 1)], -1)  # to the next frame


def query_token(memory: jax.Array, grid_mask: jax.Array, text_mask: jax.Array,
                frame_mask: jax.Array) -> jax.Array:
  """(B, d): the query's text tokens in the encoder memory, averaged over the valid frames and
  tokens (the memory is [visual ; text ; Swin] tokens per frame)."""
  hw = grid_mask.shape[1] * grid_mask.shape[2]
  valid = frame_mask[:, :, None, None].astype(memory.dtype)
  text = (memory[:, :, hw:hw + text_mask.shape[1]] * valid).sum(1) / valid.sum(1)
  weights = text_mask[..., None].astype(text.dtype)
  return (text * weights).sum(1) / weights.sum(1)


class TubeSpan(nn.Module):
  """[assumed, not CG-STVG's] `model.tube_span`: a span from the predicted tube's motion matched
  to the query.

  The official temporal decoder must find the named object's motion in each frame's tokens
  (officially through the frozen Kinetics Video-Swin). Here the final predicted tube says where
  the object is in every frame, so its motion (each box's change to the neighbouring frames,
  detached: the span does not move the boxes) is matched to the query: each motion feature is
  weighted by a projection of the query's mean encoded token (a bilinear match, so "moves left"
  can pick leftward motion), beside a projection of the temporal decoder's hidden state, and
  convolutions over frames turn the result into start/end logits and an actioness.

  With `span_from='actioness'` the start/end logits are the actioness summed before and up to
  each frame, so the post-processor's best start/end pair is the stretch of greatest summed
  actioness: the span follows from a per-frame judgement ("is the named shape doing the named
  action here") instead of being placed by two logits of their own."""
  config: ml_collections.ConfigDict

  @nn.compact
  def __call__(self, hidden: jax.Array, boxes: jax.Array, query: jax.Array,
               frame_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """hidden (B, T, d), boxes (B, T, 4), query (B, d) -> start/end logits (B, T, 2),
    actioness (B, T)."""
    s = self.config.model.tube_span
    motion = tube_motion(jax.lax.stop_gradient(boxes), frame_mask) * s.motion_scale
    if s.motion_tanh:
      motion = jnp.tanh(motion)
    matched = motion * nn.Dense(motion.shape[-1], name='query_motion')(query)[:, None]
    frame = nn.Dense(s.frame_channels, name='frame_proj')(hidden)
    x = jnp.where(frame_mask[..., None], jnp.concatenate([matched, frame], -1), 0)
    for i in range(s.conv_layers - 1):
      x = nn.Conv(s.conv_width, (s.kernel,), padding='SAME', name=f'temporal_conv_{i}')(x)
      x = jnp.where(frame_mask[..., None], nn.relu(x), 0)
    if s.span_from == 'logits':
      out = nn.Conv(3, (s.kernel,), padding='SAME', name='temporal_conv')(x)
      return out[..., :2], out[..., 2]
    if s.span_from != 'actioness':
      raise ValueError(f"model.tube_span.span_from must be 'logits' or 'actioness', "
                       f'got {s.span_from!r}')
    actioness = nn.Conv(1, (s.kernel,), padding='SAME', name='temporal_conv')(x)[..., 0]
    through = jnp.cumsum(jnp.where(frame_mask, actioness, 0), axis=1)   # sum over frames <= t
    before = through - jnp.where(frame_mask, actioness, 0)              # sum over frames < t
    # best pair s < e of (-before[s]) + through[e] = the sum of the actioness over [s, e]
    return jnp.stack([-before, through], -1), actioness


def roi_mean(features: jax.Array, boxes: jax.Array, grid_mask: jax.Array) -> jax.Array:
  """Mean of a (B, T, h, w, C) map inside each frame's (B, T, 4) normalised cxcywh box, with the
  official integer crop: x1, y1, y2 rounded, x2 ceiled, then clamped to at least one cell. Boxes
  are relative to each sample's valid (unpadded) part of the grid, `grid_mask` (B, h, w)."""
  h, w = features.shape[2:4]
  valid_h = grid_mask[:, :, 0].sum(-1).astype(boxes.dtype)[:, None]       # (B, 1)
  valid_w = grid_mask[:, 0, :].sum(-1).astype(boxes.dtype)[:, None]
  xyxy = jnp.clip(cxcywh_to_xyxy(boxes), 0)
  x1, x2 = jnp.round(xyxy[..., 0] * valid_w), jnp.ceil(xyxy[..., 2] * valid_w)
  y1, y2 = jnp.round(xyxy[..., 1] * valid_h), jnp.round(xyxy[..., 3] * valid_h)
  x2 = jnp.clip(x2, 1, valid_w)
  x1 = jnp.clip(x1, 0, x2 - 1)
  y2 = jnp.clip(y2, 1, valid_h)
  y1 = jnp.clip(y1, 0, y2 - 1)
  xs, ys = jnp.arange(w, dtype=boxes.dtype), jnp.arange(h, dtype=boxes.dtype)
  inside_x = (xs >= x1[..., None]) & (xs < x2[..., None])                   # (B, T, w)
  inside_y = (ys >= y1[..., None]) & (ys < y2[..., None])                   # (B, T, h)
  cells = (inside_y[..., :, None] & inside_x[..., None, :]).astype(features.dtype)
  total = jnp.einsum('bthw,bthwc->btc', cells, features)
  return total / cells.sum((-1, -2))[..., None]


class SpatialDecoder(nn.Module):
  """PosDecoder: per layer, anchor sine embedding → position query, one decoder layer, a new box
  `sigmoid(bbox_embed(tgt))` (absolute, not a residual; detached as the next anchor), RoI
  confidences, and the instance context for the NEXT layer."""
  config: ml_collections.ConfigDict
  bbox_embed: nn.Module

  @nn.compact
  def __call__(self, anchors: jax.Array, time_embed: jax.Array, frame_mask: jax.Array,
               memory: jax.Array, memory_pos: jax.Array, memory_mask: jax.Array,
               grid_mask: jax.Array, action_logits: jax.Array,
               targets: tuple[jax.Array, jax.Array] | None, deterministic: bool
               ) -> tuple[jax.Array, jax.Array]:
    """Returns the boxes (layers, B, T, 4) and confidences (layers, B, T)."""
    m = self.config.model
    d, (h, w) = m.hidden, grid_mask.shape[1:]
    query_scale = MLP(d, d, 2, name='query_scale')
    ref_point_head = MLP(d, d, 2, name='ref_point_head')
    conf_heads = [MLP(d, 1, 2, m.head_dropout, m.head_dropout_logits, name='conf')]
    context_mlps = [MLP(d, d, 2, name='gf_mlp')]
    maps = [memory[:, :, :h * w]]
    if m.use_swin:
      conf_heads.append(MLP(d, 1, 2, m.head_dropout, m.head_dropout_logits, name='conf2'))
      context_mlps.append(MLP(d, d, 2, name='gf_mlp2'))
      maps.append(memory[:, :, -h * w:])
    maps = [x.reshape(x.shape[:2] + (h, w, d)) for x in maps]

    tgt = jnp.zeros(anchors.shape[:2] + (d,), memory.dtype)
    context = context_mask = None
    boxes, confs = [], []
    for i in range(m.dec_layers):
      sine = anchor_sine_embedding(anchors)                   # (B, T, 512)
      query_pos = ref_point_head(sine)
      scale = 1.0 if i == 0 else query_scale(tgt)
      tgt = AnchorDecoderLayer(d, m.heads, m.ffn_dims, m.dropout, first=i == 0,
                               with_context=i > 0, name=f'layers_{i}')(
          tgt, query_pos, time_embed, sine[..., :d] * scale, frame_mask, memory, memory_pos,
          memory_mask, context, context_mask, deterministic)
      box = jax.nn.sigmoid(self.bbox_embed(tgt))
      boxes.append(box)
      anchors = jax.lax.stop_gradient(box)
      rois = [roi_mean(x, anchors, grid_mask) for x in maps]
      conf = sum(jax.nn.sigmoid(head(r, deterministic)[..., 0])
                 for head, r in zip(conf_heads, rois))
      confs.append(conf)
      if i + 1 < m.dec_layers:
        if targets is not None:      # training: frames whose box matches the ground truth
          gt_boxes, gt_mask = targets
          giou = paired_giou(cxcywh_to_xyxy(anchors), cxcywh_to_xyxy(gt_boxes))
          chosen = gt_mask & (giou > m.spat_gt_theta)
        else:                        # inference: confident boxes in predicted-action frames
          chosen = (conf > m.spat_theta) & (action_logits > m.temp_theta)
        chosen = chosen & frame_mask
        context = jnp.concatenate([mlp(r) for mlp, r in zip(context_mlps, rois)], axis=1)
        context_mask = jnp.concatenate([chosen] * len(rois), axis=1)
    return jnp.stack(boxes), jnp.stack(confs)


class CGSTVG(nn.Module):
  config: ml_collections.ConfigDict

  # Whether each frozen Dense / 1x1 conv is the sole consumer of its input (NST's skip-path
  # caveat, `jaxvg.projects.nst.injection`): module-path regexes, first match wins.
  NST_INPUTS: ClassVar[Mapping[str, str]] = {
      r'input_proj2?': 'exclusive',                          # C5 / Swin map: used only here
      r'(spatial_layers|time_layers)_\d+/linear2': 'exclusive',   # relu(linear1(x)), dropped
      r'spatial_decoder/layers_\d+/linear2': 'exclusive',
      r'resnet/layer\d_\d+/conv1': 'shared',                 # the block input feeds the skip
      r'spatial_decoder/ref_point_head/layers_0': 'shared',   # the sine anchor also feeds
  }                                                            # the cross-attention position

  def setup(self):
    m = self.config.model
    d = m.hidden
    self.resnet = resnet_module(m)
    self.roberta = Roberta(roberta_arch(m))
    self.resizer = FeatureResizer(d)
    conv1x1 = lambda name: nn.Conv(d, (1, 1), name=name)  # noqa: E731
    self.input_proj = conv1x1('input_proj')
    if m.use_swin:
      self.input_proj2 = conv1x1('input_proj2')
    self.spatial_layers = [EncoderLayer(d, m.heads, m.ffn_dims, m.dropout)
                           for _ in range(m.enc_layers)]
    self.encoder_norm = LayerNorm()
    self.pos_fc_0 = LayerNorm(BERT_LN_EPS)
    self.pos_fc_1 = nn.Dropout(0.1)
    self.pos_fc_2 = nn.Dense(m.query_dim)
    self.pos_fc_4 = LayerNorm(BERT_LN_EPS)
    self.time_layers = [TimeDecoderLayer(d, m.heads, m.ffn_dims, m.dropout)
                        for _ in range(m.dec_layers)]
    self.time_norm = LayerNorm()
    self.bbox_embed = MLP(d, 4, 3)
    self.temp_embed = MLP(d, 2, 2, m.head_dropout, m.head_dropout_logits)
    self.action_embed = MLP(d, 1, 2, m.head_dropout, m.head_dropout_logits)
    self.spatial_decoder = SpatialDecoder(self.config, self.bbox_embed)
    if m.tube_span.enabled:
      self.tube_span = TubeSpan(self.config)

  def visual_grid(self, batch: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """C5 (B, T, h, w, 2048) and its valid cells (B, h, w): the pixel mask resized by nearest
    neighbour, as the official F.interpolate of the padding mask."""
    m = self.config.model
    if 'c5' in batch:
      c5 = batch['c5']
      grid_mask = batch.get('grid_mask', jnp.ones((c5.shape[0],) + c5.shape[2:4], bool))
      return c5, grid_mask
    frames = batch['frames']
    b, t, height, width = frames.shape[:4]
    pixel_mask = batch.get('pixel_mask', jnp.ones((b, height, width), bool))
    if frames.dtype == jnp.uint8:
      frames = normalise_frames(frames, pixel_mask, self.config.data)
    c5 = self.resnet(frames.reshape((-1,) + frames.shape[2:]))
    c5 = c5.reshape((b, t) + c5.shape[1:])
    h, w = c5.shape[2:4]
    rows = (jnp.arange(h) * height) // h
    cols = (jnp.arange(w) * width) // w
    return c5, pixel_mask[:, rows][:, :, cols]

  def encode(self, batch: Mapping[str, jax.Array], deterministic: bool):
    """The multimodal memory of every frame: (B, T, N, C) tokens [ResNet ; text ; Swin], their
    decoder positions (B, N, C), the token mask, the frames' mean token and the valid grid."""
    m = self.config.model
    c5, grid_mask = self.visual_grid(batch)
    self.sow('intermediates', 'c5', c5)
    b, t, h, w = c5.shape[:4]
    vis = self.input_proj(c5).reshape(b, t, h * w, -1)
    pos = sine_positions_2d(grid_mask, m.hidden // 2).reshape(b, h * w, -1).astype(vis.dtype)
    if m.content_positions:
      vis = vis + pos[:, None]
    # official: the first cell is never masked ("avoid empty masks")
    vis_mask = grid_mask.reshape(b, h * w).at[:, 0].set(True)
    vis_mask = jnp.broadcast_to(vis_mask[:, None], (b, t, h * w))
    text_mask = batch['text_mask']
    if 'text_states' in batch:    # a feature cache's states of the frozen text tower
      text = batch['text_states']
    else:                         # a frozen tower runs without dropout, as the cache holds it
      text = self.roberta(batch['tokens'], text_mask,
                          deterministic or m.text.get('frozen', False))
    text = self.resizer(text, deterministic)                   # (B, L, C)
    n_text = text.shape[1]
    no_pos = jnp.zeros((b, n_text, m.hidden), vis.dtype)
    tokens = [vis, jnp.broadcast_to(text[:, None], (b, t) + text.shape[1:])]
    enc_pos, dec_pos = [pos, no_pos], [pos, no_pos]
    masks = [vis_mask, jnp.broadcast_to(text_mask[:, None], (b, t, n_text))]
    if m.use_swin:
      tokens.append(self.input_proj2(batch['swin']).reshape(b, t, h * w, -1))
      enc_pos.append(pos)
      dec_pos.append(jnp.zeros_like(pos))    # official: the decoders see no position on Swin
      masks.append(vis_mask)
    x = jnp.concatenate(tokens, axis=2)
    mask = jnp.concatenate(masks, axis=2)
    enc_pos = jnp.concatenate(enc_pos, axis=1)[:, None]
    for layer in self.spatial_layers:   # frames are independent: (B, T) is the batch
      x = layer(x, enc_pos, mask, deterministic)
    x = self.encoder_norm(x)
    valid = mask.astype(x.dtype)[..., None]
    frames_cls = (x * valid).sum(2) / valid.sum(2)     # mean over the frame's tokens, text too
    self.sow('intermediates', 'encoded', x)
    self.sow('intermediates', 'frames_cls', frames_cls)
    return x, jnp.concatenate(dec_pos, axis=1)[:, None], mask, frames_cls, grid_mask

  def __call__(self, batch: Mapping[str, Any], train: bool = False,
               gt_context: bool | None = None) -> dict[str, jax.Array]:
    """Outputs per decoder layer (last = final): boxes (n, B, T, 4) normalised cxcywh, conf
    (n, B, T) (a sum of sigmoids), sted (n, B, T, 2) start/end logits, actioness (n, B, T);
    with `model.tube_span`, also tube_sted (B, T, 2) and tube_actioness (B, T) from the final
    layer's tube.
    `gt_context` (default: `train`) selects instance context from the ground-truth boxes."""
    m = self.config.model
    deterministic = not train
    gt_context = train if gt_context is None else gt_context
    memory, memory_pos, memory_mask, frames_cls, grid_mask = self.encode(batch, deterministic)
    frame_mask = batch['frame_mask']
    b, t = frame_mask.shape
    time_embed = jnp.broadcast_to(sequence_sine_table(m.max_video_len + 1, m.hidden)[:t],
                                  (b, t, m.hidden))

    # Temporal decoder (zero queries), first: its actioness gates the spatial context.
    tgt = jnp.zeros((b, t, m.hidden), memory.dtype)
    hidden = []
    for layer in self.time_layers:
      tgt = layer(tgt, time_embed, frame_mask, memory, memory_pos, memory_mask, deterministic)
      hidden.append(self.time_norm(tgt))
    hidden = jnp.stack(hidden)
    self.sow('intermediates', 'time_hidden', hidden)
    sted = self.temp_embed(hidden, deterministic)
    actioness = self.action_embed(hidden, deterministic)[..., 0]

    anchors = self.pos_fc_0(frames_cls)
    anchors = self.pos_fc_4(nn.relu(self.pos_fc_2(self.pos_fc_1(anchors, deterministic))))
    anchors = jax.nn.sigmoid(anchors)
    targets = ((batch['boxes'], batch['in_span'] & batch['box_mask']) if gt_context else None)
    boxes, conf = self.spatial_decoder(anchors, time_embed, frame_mask, memory, memory_pos,
                                       memory_mask, grid_mask, actioness[-1], targets,
                                       deterministic)
    outputs = {'boxes': boxes, 'conf': conf, 'sted': sted, 'actioness': actioness}
    if m.tube_span.enabled:
      outputs['tube_sted'], outputs['tube_actioness'] = self.tube_span(
          hidden[-1], boxes[-1], query_token(memory, grid_mask, batch['text_mask'], frame_mask),
          frame_mask)
    return outputs


def dummy_batch(config: ml_collections.ConfigDict, batch_size: int, frames: int = 2,
                size: int = 64, text_len: int = 4) -> dict[str, jax.Array]:
  """A zero batch of the model's input shapes (for init and shape inference)."""
  m = config.model
  grid = size // resnet_module(m).stride
  batch = {'frames': jnp.zeros((batch_size, frames, size, size, 3), jnp.uint8),
           'pixel_mask': jnp.ones((batch_size, size, size), bool),
           'frame_mask': jnp.ones((batch_size, frames), bool),
           'tokens': jnp.zeros((batch_size, text_len), jnp.int32),
           'text_mask': jnp.ones((batch_size, text_len), bool),
           'boxes': jnp.full((batch_size, frames, 4), 0.5, jnp.float32),
           'box_mask': jnp.ones((batch_size, frames), bool),
           'in_span': jnp.ones((batch_size, frames), bool),
           'sample_mask': jnp.ones((batch_size,), bool)}
  if m.use_swin:
    batch['swin'] = jnp.zeros((batch_size, frames, grid, grid, m.swin_dims), jnp.float32)
  return batch
