"""SDST config preset. Experiment files in configs/sdst/<dataset>.py start from `base()`.

No official code or full paper text could be read: every field
marked [assumed] is a reconstruction; its comment names the alternatives. §n refers to the
research report's sections.
"""
from __future__ import annotations

import ml_collections


def base() -> ml_collections.ConfigDict:
  """QVHighlights on the released InternVideo2-1B features (§3), ≈4.1 M trainable parameters."""
  c = ml_collections.ConfigDict()
  c.task = 'sdst'
  c.seed = 0

  m = c.model = ml_collections.ConfigDict()
  m.dims = 256                  # F [assumed]: R²-Tuning's width; with the widths below ≈4.1 M.
  m.video_dims = 768            # InternVideo2-1B pooled clip features (§3).
  m.query_dims = 1024           # InternVideo2 text encoder (BERT-large width) (§3).
  m.num_tokens = 0              # 0: pooled clip features (B,T,K,Dv); >0: tokens (CLIP caches).
  m.clip_pooling = 'cls'        # CLIP tokens -> one vector per clip and layer: 'cls' or 'mean'
                                # (§2.5's CLS / average rows), or 'query' [assumed, not SDST's]:
                                # the CLS plus R²-Tuning's query-guided pooling of the tokens.
                                # SDST's own (a frozen backbone pooling head) has no CLIP twin
                                # in jaxvg; docs/sdst.md says why.
  m.pool_scale_init = 0.0       # 'query' pooling's s_l at init (the pooled share is tanh(s_l));
                                # 0 starts as 'cls', R²-Tuning's zero init [assumed].
  m.num_layers = 5              # K [assumed]: the release stores 5 layers; the paper tries 2, 3.
  m.layer_order = 'deep_first'  # [assumed] R²-Tuning's order; alt. 'shallow_first'.
  m.num_queries = 10            # M [assumed]: the usual for QVHighlights DETRs; alt. 5-30.
  m.num_heads = 8               # attention heads [assumed] (R²-Tuning).
  m.ffn_ratio = 4               # [assumed] (R²-Tuning).
  m.dropout = 0.5               # input-projection dropout [assumed] (R²-Tuning).
  m.droppath = 0.1              # residual drop path [assumed] (R²-Tuning).
  m.use_tef = True              # TEF on the video features [assumed] (Moment-DETR loaders).
  m.beta_gate = 'raw'           # D := β·D + (1−β)·V with β raw, zero-init (as written) [assumed];
                                # alt. 'sigmoid' (R²-Tuning's gate, 0.5 at init).
  m.video_attention = 'rdsa'    # sparse stream's video evidence: 'rdsa' (paper), 'deformable'
                                # (offsets from H, ablation row "Deformable CA") or 'cross'
                                # (dense cross-attention, row "Standard CA").
  m.deform_heads = 8            # [assumed] Deformable-DETR default.
  m.deform_points = 4           # sampling points per head [assumed] Deformable-DETR default.
  m.rdsa_kernel_size = 3        # RDSA temporal conv kernel [assumed]; alt. 1, 5.
  m.offset_init = 'grid'        # 'grid' (Deformable DETR / TadTR bias grid) or 'zeros' (all
                                # points at the centre: our reading of "PureInit") [assumed].
  m.rdsa_dense = 'updated'      # RDSA reads D^{l+1} ('updated') or the fused D^l ('fused')
                                # [assumed].
  m.dense_pre_norm = False      # the dense stream's CA → SA → FFN post-norm (False: as
                                # R²-Tuning's block) or pre-norm (True) [assumed].
  m.query_pos = 'span_sine'     # query position from the span (DAB-DETR) [assumed]; alt. 'none'.
  m.span_head_layers = 3        # span-refinement MLP depth [assumed] (DETR box MLP).
  m.span_head_zero_init = True  # its last layer starts at zero, so every step starts at its
                                # reference [assumed] (Deformable DETR); False: PyTorch's init.
  m.class_prior = 0.01          # σ(class logit) at init, via the bias [assumed] (focal-loss
                                # detectors: Deformable DETR 0.01); 0.5: a zero bias.
  m.detach_spans = True         # stop-gradient on R between steps [assumed] (Deformable DETR).
  # Denoising queries [assumed, not SDST's] (DN-DETR; projects/sdst/denoising.py): in training,
  # dn_groups copies of the GT windows with moved edges join the decoder, each supervised
  # towards its own window without matching. 0 = off (SDST as published).
  m.dn_groups = 0
  # Where the decoder's first references come from: 'learned' (a table, as DAB-DETR; SDST's
  # reading) or 'dense' [assumed, not SDST's] (DINO's mixed query selection: the top-M clips of
  # a per-clip proposal head on the first step's dense stream; projects/sdst/proposals.py).
  m.query_selection = 'learned'
  m.dn_noise = 0.4              # each edge moves by < dn_noise·w/2 (DN-DETR 0.4; DINO 1.0).
  m.dn_negatives = False        # DINO's contrastive negatives: a second copy per window moved by
                                # dn_noise..2·dn_noise half-widths, labelled background.
  m.text_pooling = 'mean'       # pooled text for saliency: 'mean' over valid tokens [assumed];
                                # alt. 'attention' (R²-Tuning's AdaPooling).
  m.max_num_clips = 1024        # longest video `jaxvg.Predictor` grounds, in clips (bounds its
                                # memory; the model itself has no length limit).
  m.scan = True                 # nn.scan over steps (False: a Python loop, same parameters).
  m.scan_unroll = 0             # scan unroll factor; 0 = all K steps.

  loss = c.loss = ml_collections.ConfigDict()
  # Hungarian matching cost (DETR / Moment-DETR family) [assumed].
  loss.match_cls_weight = 2.0   # focal cost weight (Deformable DETR: 2).
  loss.match_l1_weight = 5.0    # L1 on (centre, width) (DETR: 5).
  loss.match_giou_weight = 2.0  # −GIoU (DETR: 2).
  loss.focal_alpha = 0.25       # [assumed] Deformable DETR.
  loss.focal_gamma = 2.0        # [assumed].
  # L_MR (λ6 split), summed over every step (deep supervision) [assumed weights].
  loss.cls_weight = 2.0
  loss.l1_weight = 5.0
  loss.giou_weight = 2.0
  loss.actionness_weight = 1.0
  loss.actionness_target = 'iou'  # [assumed] IoU of the matched span with its GT; alt. 'binary'
                                  # (1 matched, 0 not).
  # L_HD (λ5): InfoNCE of clips against the pooled text, positives = relevant clips.
  loss.hd_weight = 1.0          # [assumed]
  loss.hd_all_steps = True      # deep supervision of the saliency too [assumed]; alt. last only.
  loss.temperature = 0.07       # [assumed] R²-Tuning.
  # L_align (λ7): SampledNCE video–text alignment along the batch and along the layers.
  loss.video_align_weight = 0.1   # [assumed] R²-Tuning's video-level InfoNCE weight.
  loss.layer_align_weight = 0.1   # [assumed] R²-Tuning's layer-level weight.
  loss.proposal_weight = 1.0    # the proposal head's terms (query_selection='dense'), times the
                                # matched terms' weights.
  loss.dn_weight = 1.0          # denoising queries' terms, times the matched terms' weights
                                # (only with model.dn_groups; DN-DETR: 1).

  post = c.post = ml_collections.ConfigDict()
  post.score = 'cls_x_actionness'   # ranking score: 'cls' or 'cls_x_actionness' [assumed].
  post.max_num_moment = 10          # windows kept per query (the QVH evaluator reads ≤ 10 for mAP).
  post.nms_type = 'none'            # 'none' (Moment-DETR) [assumed], 'normal' or 'linear'.
  post.nms_threshold = 0.7
  post.unit = 2.0                   # rounding unit in seconds; 0 = none.

  d = c.data = ml_collections.ConfigDict()
  d.dataset = 'qvhighlights'
  d.source = 'features'
  d.feature_format = 'internvideo2'   # '.npz' per video/query (§3); 'clip' = R²'s CLIP caches.
  d.anno_dir = ''
  d.feature_dir = ''
  d.video_feature_dir = ''         # overrides <feature_dir>/internvideo2_vid
  d.query_feature_dir = ''         # overrides <feature_dir>/internvideo2_txt
  d.frames_dir = ''
  d.normalize_features = True       # L2-normalise each vector [assumed] (Moment-DETR loaders).
  d.train_split = 'train'
  d.val_split = 'val'
  d.domain = ''
  d.repeat = 1
  d.min_video_len = -1
  d.t_buckets = (75,)
  d.l_buckets = (16, 32, 64)
  d.max_windows = 32
  d.truncate = False
  d.num_workers = 0
  d.prefetch = 2

  o = c.optim = ml_collections.ConfigDict()   # [assumed] R²-Tuning's schedule (§5).
  o.lr = 5e-4
  o.weight_decay = 1e-4
  o.b1 = 0.9
  o.b2 = 0.999
  o.eps = 1e-8
  o.grad_clip = 35.0
  o.warmup_steps = 500
  o.warmup_ratio = 1e-3
  o.decay_epochs = (20,)
  o.decay_factor = 0.1
  # Per-group lr multipliers (jaxvg.projects.sdst.task.param_labels): 'sparse' is the decoder
  # queries, their layer and heads; 'default' the rest. [assumed] one lr for all (1.0); DETR
  # decoders usually train at a lower lr than a side-tuner's input maps.
  o.groups = ml_collections.ConfigDict({'sparse': {'lr_scale': 1.0}})

  tr = c.train = ml_collections.ConfigDict()
  tr.batch_size = 32            # [assumed]
  tr.eval_batch_size = 32
  tr.epochs = 30
  tr.precision = 'fp32'
  tr.log_every = 10
  tr.checkpoint_every = 500
  tr.keep_checkpoints = 2
  tr.max_steps = -1
  tr.ema_decay = 0.0

  # The dataset's protocol scores every epoch (jaxvg.data.readers spec) and its primary metric
  # picks the best checkpoint unless primary_metric names another; swapped_queries also scores
  # val with every query swapped for another video's (what the query earns).
  e = c.eval = ml_collections.ConfigDict()
  e.primary_metric = ''
  e.swapped_queries = False

  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1
  c.mesh.model = 1

  # Frozen CLIP: only used when data.source == 'frames' (CLIP tokens pooled per clip).
  c.clip = ml_collections.ConfigDict()
  c.clip.arch = 'ViT-B/32'
  c.clip.path = ''
  return c
