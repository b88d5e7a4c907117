"""CG-STVG base config: the official defaults (`config/defaults.py` merged with
`experiments/hcstvg.yaml` at HengLan/CGSTVG f062d84). Dataset files in `configs/cgstvg/` state
what differs."""
from __future__ import annotations

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = 'cgstvg'
  c.seed = 0

  m = c.model = ml_collections.ConfigDict()
  m.hidden = 256                  # MODEL.CG.HIDDEN (several official modules hard-code 256)
  m.heads = 8
  m.enc_layers = 6
  m.dec_layers = 6
  m.ffn_dims = 2048
  m.dropout = 0.1
  m.query_dim = 4
  m.max_video_len = 200           # INPUT.MAX_VIDEO_LEN: the time sinusoid has 201 rows
  m.resnet = 'resnet101'
  m.resnet_width = 64             # torchvision's (C5 has 32x this many channels)
  # VISION_BACKBONE.DILATION (DETR's DC5, off officially): the last stage dilated instead of
  # strided, a C5 grid of stride 16. Without the Swin branch only (its map stays at stride 32).
  m.resnet_dilation = False
  # BackboneBase: layer2-4 train when VIS_BACKBONE_LR > 0 (0 = the stem conv, never official)
  m.train_resnet_stages = (2, 3, 4)
  # '' = the ResNet starts fresh (official: MDETR's, through --init_from); 'synthetic' = the toy
  # ResNet pretrained on the synthetic benchmark's renderer (synthetic_backbone.py).
  m.resnet_weights = ''
  # '' = the grounding transformer starts fresh (official: MDETR's encoder and box head, through
  # --init_from); 'synthetic' = every module but the temporal decoder pretrained on the
  # synthetic renderer's captioned still scenes (still_grounding.py), from the toy ResNet.
  m.grounding_weights = ''
  m.grounding_pretrain = ml_collections.ConfigDict({
      'steps': 1500, 'batch_size': 32, 'learning_rate': 3e-4,
      'max_shapes': 4,          # shapes per scene (2 to this)
      'cell_weight': 10.0,      # the named-cell term (still_grounding.train)
      'cosine_decay': False,    # True: the lr decays to 0 over the steps (False: constant)
      'log_every': 250})
  # Official (DETR): the 2-D sine positions enter attention queries and keys only, so a box is
  # read from features whose position the (pretrained) backbone encodes. True also adds them to
  # the visual tokens themselves (ViT-style), so every attended value carries its cell.
  m.content_positions = False
  m.use_swin = True               # False: the lighter variant without the Video-Swin branch
  m.swin_dims = 768
  # The frozen Video-Swin-T (backbone.py; official `video_swin_t_p4w7`): weights from the K400
  # release or a CG-STVG checkpoint (its `vid.` keys); '' = seeded random (tests, benchmarks).
  m.swin_weights = ''
  m.swin_tower = ml_collections.ConfigDict({
      'embed_dim': 96, 'depths': (2, 2, 6, 2), 'heads': (3, 6, 12, 24), 'window': (8, 7, 7),
      'patch': (1, 4, 4),         # the map CG-STVG reads: stride patch x 2^(stages-1) (32 here)
      'patch_frames': 0})         # frames per patch embedding (0: patch[0], Video-Swin's)
  # [assumed, not CG-STVG's] model.TubeSpan: the span from the final predicted tube's motion
  # (each box's change to the neighbouring frames, times motion_scale: normalised boxes move a
  # few hundredths a frame) matched to the query's mean encoded token, beside frame_channels of
  # the temporal decoder's hidden state, through conv_layers convolutions over `kernel` frames
  # (conv_width channels between them); the post-processor then reads that span. Off
  # officially: the official span sees motion only through the frozen Kinetics Video-Swin.
  # motion_tanh squashes the scaled motion (a box jumping to another shape then counts as one
  # large step, not as a dominant one). span_from: 'logits' (start/end logits of the head's own,
  # trained by the KL term as the official span) or 'actioness' (start/end from the summed
  # per-frame actioness: the span is the stretch of greatest summed actioness, trained by the
  # actioness term alone). fit_steps > 0 ends training with a fresh head fit for that many
  # steps (batches of fit_batch_size, AdamW at fit_lr) on the finished model's eval-mode tube
  # of the train split (span_fit.py).
  m.tube_span = ml_collections.ConfigDict({'enabled': False, 'motion_scale': 10.0,
                                           'motion_tanh': False, 'span_from': 'logits',
                                           'frame_channels': 8, 'kernel': 3,
                                           'conv_layers': 2, 'conv_width': 32,
                                           'fit_steps': 0, 'fit_batch_size': 4,
                                           'fit_lr': 3e-3})
  m.head_dropout = 0.3            # dropout of the temp/action/conf MLPs
  # Official MLPs drop out their output logits too; False drops hidden activations only.
  m.head_dropout_logits = True
  # Context thresholds (HC-STVG v1): inference keeps frames with conf_2d + conf_3d > spat_theta
  # and a raw last-layer actioness logit > temp_theta; training keeps GIoU(box, GT) > spat_gt.
  m.temp_theta = 0.5
  m.spat_theta = 0.8
  m.spat_gt_theta = 0.8
  t = m.text = ml_collections.ConfigDict()   # roberta-base
  t.vocab_size = 50265
  t.hidden = 768
  t.layers = 12
  t.heads = 12
  t.intermediate = 3072
  t.max_positions = 514
  t.type_vocab_size = 1
  t.pad_token_id = 1
  t.max_query_len = 26            # INPUT.MAX_QUERY_LEN
  # Official: RoBERTa trains (lr 5e-5). True freezes the tower (the resizer still trains): it
  # runs without dropout, and `prepare features cgstvg` caches its states of every query, which
  # the tube pipeline then reads with data.features_dir (`text_states`).
  t.frozen = False

  # Data: the tube pipeline (jaxvg.data.tube_examples.TubeData) over `prepare stvg_frames`.
  d = c.data = ml_collections.ConfigDict()
  d.dataset = 'hcstvg'            # jaxvg.data.stvg_readers.STVG_PROTOCOLS
  d.anno_dir = ''
  d.frames_dir = ''
  # A `python -m jaxvg.prepare features cgstvg` cache: C5 (and Swin) maps replace the frames.
  d.features_dir = ''
  d.train_split = 'train'
  d.val_split = 'test'
  d.resolution = 420              # short side; the long side at most 1.4x (588)
  d.max_size = 588
  d.height, d.width = 420, 588    # the static canvas every batch is padded to (pixel_mask)
  # Multi-scale training resize (short sides, long side <= train_max_size). The official
  # RandomResize resizes to the frame's own size (its `get_size` call is commented out), so
  # official training sees one scale: () here; its intended scales were (420, 388, 356, 324).
  d.train_scales = ()
  d.train_max_size = 720
  d.sample_fps = 3.2              # HC-STVG train; the test frames are stored at twice it
  # The official test (engine/evaluate.py): the stored test clip (HC-STVG 2 x sample_fps, VidSTG
  # test_frames) runs as its even and its odd frames, merged by the post-processor. The dataset
  # configs set it (official); off here, one pass over the stored clip (configs/cgstvg/synthetic.py
  # stores one density for train and val).
  d.test_halves = False
  d.train_frames = 64             # VidSTG uniform sampling
  d.test_frames = 128
  d.max_frames = 200              # INPUT.MAX_VIDEO_LEN
  d.frame_buckets = (32, 64, 96, 128, 200)
  d.crop_prob = 0.5               # TEMP_CROP_PROB
  d.flip_prob = 0.7               # FLIP_PROB_TRAIN (also swaps left/right in the text)
  # The official swap replaces substrings ('bright' -> 'bleft'); True swaps whole words only.
  d.flip_whole_words = False
  d.max_text_len = 32             # static token length (MAX_QUERY_LEN 26 words + <s>, </s>)
  # RoBERTa tokenizer folder (roberta-base: tokenizer.json, or vocab.json + merges.txt); '' =
  # no tokens in the batch (a feature cache holds the text states).
  d.tokenizer = ''
  d.pixel_mean = (0.485, 0.456, 0.406)
  d.pixel_std = (0.229, 0.224, 0.225)
  d.num_workers = 0
  d.prefetch = 2

  loss = c.loss = ml_collections.ConfigDict()
  loss.bbox = 5.0
  loss.giou = 4.0
  loss.sted = 10.0
  loss.actioness = 2.0
  loss.conf = 1.0
  loss.eos = 0.3
  loss.sigma = 2.0
  loss.aux = True
  loss.tube_span = 1.0            # model.tube_span's span terms: x loss.sted and x loss.actioness
  # The official confidence target (IoU of the predicted box) is not detached, so loss_conf
  # also trains the boxes; False detaches it.
  loss.conf_target_gradient = True

  # Optimisation: AdamW, clip 0.1, groups by official module (optim.py); learning rates are
  # lr x groups[g].lr_scale: base 3e-4, ResNet layer2-4 2e-5, RoBERTa 5e-5, time decoder 1e-4.
  o = c.optim = ml_collections.ConfigDict()
  o.lr = 3e-4
  o.weight_decay = 1e-4
  o.b1, o.b2, o.eps = 0.9, 0.999, 1e-8
  o.grad_clip = 0.1
  o.groups = ml_collections.ConfigDict({
      'backbone': {'lr_scale': 2e-5 / 3e-4}, 'text': {'lr_scale': 5e-5 / 3e-4},
      'temporal': {'lr_scale': 1e-4 / 3e-4}, 'frozen': {'frozen': True}})
  # The official schedule (optim.lr_schedules): base and backbone x0.1 at each drop epoch;
  # text and temporal warm up linearly over warmup_fraction of the steps, then decay linearly
  # to 0 ('multistep_with_warmup'), or every group warms up then drops (`..._all`).
  o.schedule = 'multistep_with_warmup'
  o.warmup_fraction = 0.01
  o.decay_epochs = (50, 90)
  o.decay_factor = 0.1
  o.warmup_steps = 0              # the engine's shared schedule: base-group form, no warm-up
  o.warmup_ratio = 1.0

  t = c.train = ml_collections.ConfigDict()
  t.batch_size = 8                # 1 video per GPU x 8 GPUs
  t.eval_batch_size = 8
  t.epochs = 90
  t.precision = 'fp32'
  t.log_every = 10
  t.checkpoint_every = 2000
  t.keep_checkpoints = 2
  t.max_steps = -1
  t.ema_decay = 0.9998            # the EMA model is the one evaluated

  c.eval = ml_collections.ConfigDict()
  c.eval.primary_metric = ''
  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1
  c.mesh.model = 1
  return c
