"""CG-STVG at toy size for the synthetic tube benchmark and CPU tests: ResNet-50 layout, a
small RoBERTa and narrow FFNs, no Video-Swin branch (the lighter variant). The hidden width stays
256: the official model hard-codes it in several modules.

Without the Swin branch the per-frame confidence is one sigmoid instead of a sum of two, so the
inference context threshold is halved (an assumption; the official model always has both).
"""
from jaxvg.projects.cgstvg.config import base_config


def get_config(arg: str = ''):
  del arg
  c = base_config()
  c.data.dataset = 'synthetic_tubes'
  c.data.resolution = 64
  c.data.max_size = 96
  c.data.height, c.data.width = 64, 96
  c.data.max_frames = 32
  c.data.frame_buckets = (16, 32)
  c.data.max_text_len = 16
  c.model.resnet = 'resnet50'
  c.model.use_swin = False
  c.model.enc_layers = 2
  c.model.dec_layers = 3
  c.model.ffn_dims = 64
  c.model.spat_theta = 0.4
  c.model.max_video_len = 64
  t = c.model.text
  t.vocab_size, t.hidden, t.layers, t.heads, t.intermediate, t.max_positions = (
      100, 32, 2, 4, 64, 40)
  c.train.epochs = 20
  c.train.batch_size = 2
  return c
