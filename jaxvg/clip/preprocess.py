"""CLIP's image preprocessing, split host / device.

The official pipeline is Resize(short side, bicubic) -> CenterCrop -> ToTensor (/255) ->
Normalize(mean, std). The host half here returns the uint8 centre crop (what frame caches
store); the device half (`jaxvg.modules.clip.normalize_frames`) does /255 and mean/std inside
jit. Together they equal the torchvision pipeline.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from jaxvg.modules.clip import normalize_frames  # noqa: F401  (the device half, re-exported)


def resize_short_side(image: Image.Image, size: int) -> Image.Image:
  """Bicubic resize so the short side is `size` (torchvision's rounding of the long side)."""
  width, height = image.size
  short, long = (width, height) if width <= height else (height, width)
  if short == size:
    return image
  new_short, new_long = size, int(size * long / short)
  new_size = (new_short, new_long) if width <= height else (new_long, new_short)
  return image.resize(new_size, Image.BICUBIC)


def center_crop(image: Image.Image, size: int) -> Image.Image:
  """Centre crop to size x size (torchvision's rounding of the offsets)."""
  width, height = image.size
  if width < size or height < size:
    raise ValueError(f'image {width}x{height} is smaller than the crop {size}')
  top = int(round((height - size) / 2.0))
  left = int(round((width - size) / 2.0))
  return image.crop((left, top, left + size, top + size))


def preprocess(image: Image.Image | np.ndarray, size: int = 224) -> np.ndarray:
  """An RGB image (PIL or (H, W, 3) uint8) -> (size, size, 3) uint8 CLIP centre crop."""
  if isinstance(image, np.ndarray):
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
      raise ValueError(f'expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}')
    image = Image.fromarray(image)
  image = center_crop(resize_short_side(image, size), size).convert('RGB')
  return np.asarray(image, np.uint8)
