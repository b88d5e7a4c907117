"""ResNet with frozen batch norm (torchvision layout, as DETR/MDETR use it): the C5 map.

Frozen batch norm keeps its statistics and affine terms as parameters (so the model applies with
`{'params': ...}` alone) behind a stop-gradient: they never receive a gradient, and a system's
parameter labels must keep the optimiser (weight decay) off them too. Which conv stages train is
likewise the optimiser's business, not the module's.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn


# Blocks per stage; 'resnet14' (one block each) is a toy for CPU runs, not a torchvision model.
RESNET_STAGES = {'resnet14': (1, 1, 1, 1), 'resnet50': (3, 4, 6, 3), 'resnet101': (3, 4, 23, 3)}


class FrozenBatchNorm(nn.Module):
  """y = x · w / sqrt(var + eps) + (b − mean · w / sqrt(var + eps)), channels last."""
  features: int
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    buffer = lambda name, value: jax.lax.stop_gradient(self.param(  # noqa: E731
        name, nn.initializers.constant(value), (self.features,), jnp.float32))
    weight, bias = buffer('weight', 1.0), buffer('bias', 0.0)
    mean, var = buffer('running_mean', 0.0), buffer('running_var', 1.0)
    scale = weight * jax.lax.rsqrt(var + self.epsilon)
    return x * scale + (bias - mean * scale)


# torchvision's ResNet initialisation (`kaiming_normal_(mode='fan_out', nonlinearity='relu')`):
# activations keep their scale through frozen identity batch norms, so a toy ResNet trains from
# scratch (PyTorch's default conv init shrinks them ~sqrt(6)x per conv).
RESNET_CONV_INIT = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def conv(features: int, kernel: int, stride: int = 1, name: str | None = None,
         dilation: int = 1) -> nn.Conv:
  """Bias-free conv with torchvision's padding (dilation · (k // 2)) and ResNet initialisation."""
  pad = dilation * (kernel // 2)
  return nn.Conv(features, (kernel, kernel), (stride, stride), padding=[(pad, pad)] * 2,
                 kernel_dilation=(dilation, dilation), use_bias=False,
                 kernel_init=RESNET_CONV_INIT, name=name)


class Bottleneck(nn.Module):
  """torchvision Bottleneck (stride on the 3×3 conv, ResNet v1.5), expansion 4."""
  planes: int
  stride: int = 1
  downsample: bool = False
  dilation: int = 1               # of the 3×3 conv

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out = nn.relu(FrozenBatchNorm(self.planes, name='bn1')(conv(self.planes, 1, name='conv1')(x)))
    out = nn.relu(FrozenBatchNorm(self.planes, name='bn2')(
        conv(self.planes, 3, self.stride, name='conv2', dilation=self.dilation)(out)))
    out = FrozenBatchNorm(self.planes * 4, name='bn3')(conv(self.planes * 4, 1, name='conv3')(out))
    if self.downsample:
      x = FrozenBatchNorm(self.planes * 4, name='downsample_1')(
          conv(self.planes * 4, 1, self.stride, name='downsample_0')(x))
    return nn.relu(out + x)


class ResNet(nn.Module):
  """Stem + four bottleneck stages; (N, H, W, 3) -> C5 (N, H/32, W/32, 32 * width): 2048 at
  torchvision's width 64 (narrower widths make toy models).

  dilate_c5: DETR's DC5 (torchvision's `replace_stride_with_dilation=[False, False, True]`): the
  last stage keeps stride 16, its first block undilated and the others dilated by 2; the same
  parameters give a C5 map of twice the resolution.
  """
  stages: Sequence[int] = RESNET_STAGES['resnet101']
  width: int = 64
  dilate_c5: bool = False

  @property
  def stride(self) -> int:
    """Pixels per C5 cell."""
    return 16 if self.dilate_c5 else 32

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = nn.relu(FrozenBatchNorm(self.width, name='bn1')(
        conv(self.width, 7, 2, name='conv1')(images)))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=[(1, 1), (1, 1)])
    for stage, blocks in enumerate(self.stages):
      planes = self.width * 2**stage
      dilated = self.dilate_c5 and stage == 3
      for block in range(blocks):
        stride = 2 if block == 0 and stage > 0 and not dilated else 1
        x = Bottleneck(planes, stride=stride, downsample=block == 0,
                       dilation=2 if dilated and block > 0 else 1,
                       name=f'layer{stage + 1}_{block}')(x)
    return x
