"""R²-Tuning's config presets; experiment files in `configs/r2tuning/` start from these.

This mirrors the official layout (`configs/_base_/models/model.py` + per-dataset files): the base
holds the official defaults, each experiment file states only what differs.
"""
from __future__ import annotations

import ml_collections


def base() -> ml_collections.ConfigDict:
  """Official R²-Tuning defaults (QVHighlights values)."""
  c = ml_collections.ConfigDict()
  c.task = 'r2tuning'
  c.seed = 0

  # Model. Widths are those of the frozen CLIP features fed in.
  c.model = ml_collections.ConfigDict()
  c.model.dims = 256                  # C, hidden size of the R² block.
  c.model.video_dims = 768            # CLIP visual width (ViT-B/32).
  c.model.query_dims = 512            # CLIP text width.
  c.model.num_tokens = 50             # visual tokens per frame (CLS + patches).
  c.model.num_layers = 4              # K: last K CLIP layers, refined deepest first.
  c.model.num_heads = 8
  c.model.ffn_ratio = 4
  c.model.dropout = 0.5               # dropout in the input MLPs (video_map / query_map).
  c.model.droppath = 0.1
  c.model.use_tef = True
  c.model.strides = (1, 2, 4, 8)
  c.model.use_coord_head = True
  c.model.merge_cls_sal = True
  c.model.max_num_clips = 1024        # PointGenerator buffer_size.
  # Official training normalises PE/TEF by the *padded* length and lets padded query tokens into
  # the pooling max. False = padding-invariant (the default, also at inference).
  c.model.official_padding = False
  # nn.scan unroll factor of the recurrence: 0 unrolls all K steps (XLA fuses and schedules
  # across layers: ~20-30% faster per train step on CPU at about the same compile time,
  # docs/performance.md); 1 keeps one loop body (the smallest graph).
  c.model.scan_unroll = 0
  # 'fused': the input maps as single ops with hand-written backward passes, the pooling
  # re-associated through `Linear.dual`, a masked max that saves its argmax (the fast path,
  # docs/performance.md); 'plain': the official composition as written (the reference path).
  # The same parameters and numbers (tests/projects/r2tuning/test_fast_paths.py).
  c.model.impl = 'fused'

  # Losses.
  c.loss = ml_collections.ConfigDict()
  c.loss.cls_type = 'focal'           # 'focal' (MR/HD) or 'dynamic_bce' (TVSum/YouTube).
  c.loss.cls_weight = 1.0
  c.loss.focal_gamma = 2.0
  c.loss.reg_weight = 0.2
  c.loss.center_radius = 1.5
  c.loss.regress_ranges = ((0.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, float('inf')))
  c.loss.sal_weight = 0.1
  c.loss.sal_direction = 'both'       # 'both' (row + col) or 'row' (TVSum/YouTube).
  c.loss.temperature = 0.07
  c.loss.video_cal_weight = 0.1
  c.loss.layer_cal_weight = 0.1

  # Inference post-processing.
  c.post = ml_collections.ConfigDict()
  c.post.max_num_moment = 50
  c.post.nms_type = 'normal'          # 'normal' (zero scores at IoU >= thres) or 'linear'.
  c.post.nms_threshold = 0.7
  c.post.unit = 2.0                   # rounding unit in seconds; 0 = none.

  # Data (see jaxvg/data). Paths are filled in by experiment files or the command line.
  c.data = ml_collections.ConfigDict()
  c.data.dataset = 'qvhighlights'
  c.data.source = 'features'          # 'features' (cached CLIP features) or 'frames'.
  # The clip rate (fps) is a property of the dataset (jaxvg.data.readers spec), not a setting.
  c.data.anno_dir = ''
  c.data.feature_dir = ''             # holds clip_b32_vid_k4/ and clip_b32_txt_k4/ (official)
  c.data.video_feature_dir = ''       # overrides <feature_dir>/clip_b32_vid_k4
  c.data.query_feature_dir = ''       # overrides <feature_dir>/clip_b32_txt_k4
  c.data.frames_dir = ''
  c.data.train_split = 'train'
  c.data.val_split = 'val'
  c.data.domain = ''
  c.data.repeat = 1
  c.data.min_video_len = 5
  c.data.t_buckets = (32, 64, 96, 128, 256, 512, 1024)
  c.data.l_buckets = (16, 32, 77)
  c.data.max_windows = 32             # QVHighlights val has up to 25 windows per query.
  c.data.truncate = False             # videos longer than the largest bucket: error (False)
  c.data.num_workers = 0
  c.data.prefetch = 2

  # Optimisation.
  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 5e-4
  c.optim.weight_decay = 1e-4
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.grad_clip = 35.0
  c.optim.warmup_steps = 500
  c.optim.warmup_ratio = 1e-3
  c.optim.decay_epochs = (20,)        # step decay x decay_factor at these 0-indexed epochs.
  c.optim.decay_factor = 0.1
  # How warm-up and decay combine: 'nncore' (official engine) ignores the decay during warm-up
  # and resets to the base lr when warm-up ends, until the next epoch boundary; 'multiply'
  # scales the decayed lr by the warm-up factor. Equal unless a decay epoch starts inside the
  # warm-up (no official config; short runs such as the synthetic benchmark can hit it).
  c.optim.warmup_mode = 'nncore'

  # Training loop.
  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 128
  c.train.eval_batch_size = 32
  c.train.epochs = 30
  # 'fp32' or 'bf16' (bf16 compute, fp32 params/optimizer). The official launcher defaults to
  # fp16 autocast with a dynamic GradScaler (tools/launch.py --amp fp16, on GPU; the R² block
  # and the pyramid in fp16, heads and losses in fp32). jaxvg's reference is fp32, which the
  # official code computes with --amp none and on which parity is measured; bf16 is the
  # accelerator analogue that needs no loss scaling.
  c.train.precision = 'fp32'
  c.train.log_every = 10
  c.train.checkpoint_every = 500
  c.train.keep_checkpoints = 2
  c.train.max_steps = -1              # -1: epochs decide.
  c.train.ema_decay = 0.0             # > 0: evaluate and keep an EMA of the parameters.

  # Evaluation: the dataset's protocol scores every epoch (jaxvg.data.readers spec); its primary
  # metric picks the best checkpoint unless this names another.
  c.eval = ml_collections.ConfigDict()
  c.eval.primary_metric = ''
  # True: after training and in --mode eval, score val again with every query swapped for
  # another video's and print both (the part of the score the query earns).
  c.eval.swapped_queries = False

  # Device mesh: -1 infers the size from the devices.
  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1
  c.mesh.model = 1

  # Frozen CLIP: only used when data.source == 'frames' (features computed inside the step).
  c.clip = ml_collections.ConfigDict()
  c.clip.arch = 'ViT-B/32'
  c.clip.path = ''                    # weight file; '' = random init (synthetic benchmark only).
  return c


def highlight(dataset: str, domain: str, domains: tuple[str, ...], epochs: int
                       ) -> ml_collections.ConfigDict:
  """The TVSum / YouTube Highlights variant: one domain per run.

  No TEF, a single stride-1 level, no regression head, DynamicBCE on soft saliency, row-only
  SampledNCE, saliency = sigmoid(class logit), constant lr after a 50-iteration warm-up.
  """
  if domain not in domains:
    raise ValueError(f'{dataset}: domain must be one of {domains} (config file ":domain" '
                     f'argument), got {domain!r}')
  c = base()
  c.data.dataset = dataset
  c.data.domain = domain
  c.data.val_split = 'val'            # as officially, the "val" split is the test split.
  c.model.use_tef = False
  c.model.strides = (1,)
  c.model.use_coord_head = False
  c.model.merge_cls_sal = False
  c.loss.cls_type = 'dynamic_bce'
  c.loss.reg_weight = 0.0
  c.loss.sal_direction = 'row'
  c.train.batch_size = 4
  c.train.epochs = epochs
  c.optim.warmup_steps = 50
  c.optim.decay_epochs = ()
  return c
