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
  m.train_resnet_stages = (2, 3, 4)   # BackboneBase: layer2-4 train when VIS_BACKBONE_LR > 0
  m.use_swin = True               # False: the lighter variant without the Video-Swin branch
  m.swin_dims = 768
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

  d = c.data = ml_collections.ConfigDict()
  d.dataset = 'hcstvg_v1'
  d.resolution = 420
  d.max_size = 588                # long side <= 1.4 x resolution at load time
  d.train_scales = (420, 388, 356, 324)
  d.train_max_size = 720
  d.sample_fps = 3.2              # HC-STVG; test at twice the density (even/odd halves)
  d.train_frames = 64             # VidSTG uniform sampling
  d.test_frames = 128
  d.flip_prob = 0.7
  d.temp_crop_prob = 0.5
  d.pixel_mean = (0.485, 0.456, 0.406)
  d.pixel_std = (0.229, 0.224, 0.225)

  loss = c.loss = ml_collections.ConfigDict()
  loss.bbox = 5.0
  loss.giou = 4.0
  loss.sted = 10.0
  loss.actioness = 2.0
  loss.conf = 1.0
  loss.eos = 0.3
  loss.sigma = 2.0
  loss.aux = True
  # The official confidence target (IoU of the predicted box) is not detached, so loss_conf
  # also trains the boxes; False detaches it.
  loss.conf_target_gradient = True

  o = c.optim = ml_collections.ConfigDict()
  o.optimizer = 'adamw'
  o.weight_decay = 1e-4
  o.max_grad_norm = 0.1
  o.lr = 3e-4                     # BASE_LR
  o.backbone_lr = 2e-5            # VIS_BACKBONE_LR (ResNet layer2-4)
  o.text_lr = 5e-5                # TEXT_LR (RoBERTa)
  o.temporal_lr = 1e-4            # TEMP_LR (ground_decoder.time_decoder)
  o.schedule = 'multistep_with_warmup'
  o.drop_epochs = (50, 90)
  o.warmup_fraction = 0.01
  o.ema_decay = 0.9998

  c.train = ml_collections.ConfigDict()
  c.train.epochs = 90
  c.train.batch_size = 8          # 1 video per GPU x 8 GPUs
  return c
