"""Image degradations as jittable JAX ops (applied on device, inside the step), and the per-video
mixed-quality protocol that decides which video gets which.

The ops follow the `imagecorruptions` package (ImageNet-C's code) at its five severities, on
float images in [0, 255] of shape (..., H, W, C); the severity is a traced int32 (1…5), so one
compiled step degrades every video of a batch at its own severity:
- motion_blur: ImageNet-C's streak, a sum of 2r+1 edge-clamped shifts with one-sided Gaussian
  weights along a random angle in [−45°, 45°] (stopped, unnormalised, where the streak leaves the
  image, as the official loop does);
- defocus_blur: the anti-aliased disk kernel, correlated with a reflect-101 border (cv2's);
- gaussian_noise: x + N(0, (255 c)²), clipped;
- jpeg: JPEG's lossy core, 8×8 DCT quantisation with libjpeg's quality-scaled tables, YCbCr
  4:2:0 (a stand-in for PIL's encoder at ImageNet-C's qualities; no entropy coding, box
  chroma up-sampling).
H.264 re-encoding needs a codec and is done at preparation time (`jaxvg.prepare.degrade`).

`radius_scale` scales the blur radii (and the motion σ) for frames larger than ImageNet-C's 224
pixels (about 1.9 at 420 pixels).
"""
from __future__ import annotations

import dataclasses
import functools
import zlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)
# imagecorruptions 1.1.2, corruptions.py, per severity 1…5.
MOTION_BLUR = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))        # (radius, sigma)
DEFOCUS_BLUR = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))  # (radius, alias blur)
GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)                      # sigma on [0, 1]
JPEG_QUALITY = (25, 18, 15, 10, 7)
MAX_MOTION_ANGLE = 45.0

# Degradation kinds, by the index a batch carries. 'h264' is applied at preparation time: on
# device it is the identity (the frames were read from the re-encoded video).
KINDS = ('clean', 'motion_blur', 'defocus_blur', 'gaussian_noise', 'jpeg', 'h264')
H264_CRF = (23, 30, 37, 44, 51)  # Mini-Kinetics-C's h264_crf severities


def _severity_index(severity: jax.Array) -> jax.Array:
  return jnp.clip(jnp.asarray(severity, jnp.int32) - 1, 0, len(SEVERITIES) - 1)


def _scaled(radius: float, scale: float) -> int:
  return max(1, int(round(radius * scale)))


# --- motion blur -------------------------------------------------------------------------------

def motion_blur(images: jax.Array, severity: jax.Array, angle: jax.Array,
                radius_scale: float = 1.0) -> jax.Array:
  """ImageNet-C motion blur of (..., H, W, C) images in [0, 255] along `angle` degrees."""
  radii = np.array([_scaled(r, radius_scale) for r, _ in MOTION_BLUR])
  sigmas = np.array([s * radius_scale for _, s in MOTION_BLUR], np.float32)
  index = _severity_index(severity)
  width, sigma = 2 * jnp.asarray(radii)[index] + 1, jnp.asarray(sigmas)[index]
  steps = jnp.arange(2 * radii.max() + 1)
  weights = jnp.where(steps < width, jnp.exp(-jnp.square(steps) / (2 * jnp.square(sigma))), 0.0)
  weights = weights / weights.sum()
  radians = jnp.deg2rad(jnp.asarray(angle, jnp.float32))
  dy = -jnp.ceil(steps * jnp.sin(radians) - 0.5).astype(jnp.int32)
  dx = -jnp.ceil(steps * jnp.cos(radians) - 0.5).astype(jnp.int32)
  height, width_px = images.shape[-3], images.shape[-2]
  # The official loop breaks at the first shift as large as the image.
  inside = jnp.cumprod((jnp.abs(dy) < height) & (jnp.abs(dx) < width_px)).astype(weights.dtype)
  weights = weights * inside
  rows, cols = jnp.arange(height), jnp.arange(width_px)

  def add_shift(step, blurred):
    shifted = jnp.take(images, jnp.clip(rows - dy[step], 0, height - 1), axis=-3)
    shifted = jnp.take(shifted, jnp.clip(cols - dx[step], 0, width_px - 1), axis=-2)
    return blurred + weights[step] * shifted
  blurred = jax.lax.fori_loop(0, steps.size, add_shift, jnp.zeros_like(images, jnp.float32))
  return jnp.clip(blurred, 0, 255)


# --- defocus blur ------------------------------------------------------------------------------

def _gaussian_blur_reflect101(image: np.ndarray, size: int, sigma: float) -> np.ndarray:
  """cv2.GaussianBlur(image, (size, size), sigma) with its default reflect-101 border."""
  offsets = np.arange(size) - (size - 1) / 2
  taps = np.exp(-np.square(offsets) / (2 * sigma ** 2))
  taps /= taps.sum()
  pad = size // 2
  padded = np.pad(image.astype(np.float64), pad, mode='reflect')
  rows = sum(taps[i] * padded[i:i + image.shape[0], :] for i in range(size))
  return sum(taps[j] * rows[:, j:j + image.shape[1]] for j in range(size))


def disk_kernel(radius: int, alias_blur: float) -> np.ndarray:
  """imagecorruptions' `disk`: a normalised disk on a 17×17 grid (radius ≤ 8) or a
  (2r+1)² grid, anti-aliased by a 3×3 (5×5 for r > 8) Gaussian blur."""
  half, size = (8, 3) if radius <= 8 else (radius, 5)
  grid = np.arange(-half, half + 1)
  y, x = np.meshgrid(grid, grid)
  disk = (x ** 2 + y ** 2 <= radius ** 2).astype(np.float32)
  disk /= disk.sum()
  return _gaussian_blur_reflect101(disk, size, alias_blur).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _defocus_kernels(radius_scale: float) -> np.ndarray:
  """(5, K, K) kernels of the five severities, zero-padded to one size K."""
  kernels = [disk_kernel(_scaled(r, radius_scale), alias) for r, alias in DEFOCUS_BLUR]
  size = max(k.shape[0] for k in kernels)
  return np.stack([np.pad(k, (size - k.shape[0]) // 2) for k in kernels])


def defocus_blur(images: jax.Array, severity: jax.Array, radius_scale: float = 1.0) -> jax.Array:
  """ImageNet-C defocus blur of (..., H, W, C) images in [0, 255] (cv2.filter2D's correlation
  with a reflect-101 border)."""
  kernels = _defocus_kernels(float(radius_scale))
  kernel = jnp.asarray(kernels)[_severity_index(severity)]
  size, channels = kernel.shape[0], images.shape[-1]
  pad = size // 2
  if pad >= min(images.shape[-3:-1]):
    raise ValueError(f'images {images.shape[-3:-1]} are too small for a {size}-pixel '
                     'defocus kernel')
  flat = images.reshape((-1,) + images.shape[-3:]).astype(jnp.float32) / 255.0
  flat = jnp.pad(flat, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='reflect')
  filters = jnp.broadcast_to(kernel[:, :, None, None], (size, size, 1, channels))
  blurred = jax.lax.conv_general_dilated(
      flat, filters, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      feature_group_count=channels, precision=jax.lax.Precision.HIGHEST)
  return jnp.clip(blurred, 0, 1).reshape(images.shape) * 255.0


# --- Gaussian noise ----------------------------------------------------------------------------

def gaussian_noise(images: jax.Array, severity: jax.Array, key: jax.Array) -> jax.Array:
  """ImageNet-C Gaussian noise: clip(x / 255 + N(0, c²), 0, 1) · 255."""
  scale = jnp.asarray(GAUSSIAN_NOISE, jnp.float32)[_severity_index(severity)]
  noise = jax.random.normal(key, images.shape, jnp.float32)
  return jnp.clip(images.astype(jnp.float32) / 255.0 + scale * noise, 0, 1) * 255.0


# --- JPEG-like blocking ------------------------------------------------------------------------

# The IJG standard tables (ITU T.81 Annex K), row-major 8×8.
_LUMA_TABLE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]).reshape(8, 8)
_CHROMA_TABLE = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99]).reshape(8, 8)


def quantisation_tables(quality: int) -> np.ndarray:
  """(2, 8, 8) luma and chroma tables at a JPEG quality, as libjpeg's jpeg_set_quality scales
  them (baseline: clamped to 1…255)."""
  scale = 5000 // quality if quality < 50 else 200 - 2 * quality
  tables = np.stack([_LUMA_TABLE, _CHROMA_TABLE])
  return np.clip((tables * scale + 50) // 100, 1, 255).astype(np.float32)


def dct_matrix(size: int = 8) -> np.ndarray:
  """The orthonormal DCT-II matrix D (D @ x transforms a column)."""
  k, n = np.meshgrid(np.arange(size), np.arange(size), indexing='ij')
  matrix = np.cos(np.pi * (2 * n + 1) * k / (2 * size)) * np.sqrt(2 / size)
  matrix[0] /= np.sqrt(2)
  return matrix.astype(np.float32)


_RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114],
                          [-0.168735892, -0.331264108, 0.5],
                          [0.5, -0.418687589, -0.081312411]], np.float32)


def _quantise_blocks(plane: jax.Array, table: jax.Array) -> jax.Array:
  """8×8 DCT → round(coef / table) · table → inverse DCT, on (N, H, W) planes (H, W ÷ 8)."""
  n, height, width = plane.shape
  blocks = plane.reshape(n, height // 8, 8, width // 8, 8)
  dct = jnp.asarray(dct_matrix())
  highest = jax.lax.Precision.HIGHEST
  coefficients = jnp.einsum('uy,nbyax,vx->nbuav', dct, blocks, dct, precision=highest)
  coefficients = jnp.round(coefficients / table[:, None, :]) * table[:, None, :]
  restored = jnp.einsum('uy,nbuav,vx->nbyax', dct, coefficients, dct, precision=highest)
  return restored.reshape(n, height, width)


def jpeg(images: jax.Array, severity: jax.Array) -> jax.Array:
  """JPEG-like blocking of (..., H, W, 3) images in [0, 255] at ImageNet-C's quality for the
  severity: YCbCr, 2×2-averaged chroma, 8×8 DCT quantisation, rounded to integers."""
  tables = jnp.asarray(np.stack([quantisation_tables(q) for q in JPEG_QUALITY]))
  luma_table, chroma_table = tables[_severity_index(severity)]
  shape = images.shape
  height, width = shape[-3:-1]
  flat = images.reshape((-1, height, width, shape[-1])).astype(jnp.float32)
  # JPEG pads to whole 16×16 macro-blocks by repeating the last row and column.
  padded_h, padded_w = -(-height // 16) * 16, -(-width // 16) * 16
  flat = jnp.pad(flat, ((0, 0), (0, padded_h - height), (0, padded_w - width), (0, 0)), mode='edge')
  chroma_offset = jnp.array([0.0, 128, 128])[:, None, None]
  ycbcr = jnp.einsum('nhwc,dc->ndhw', flat, jnp.asarray(_RGB_TO_YCBCR),
                     precision=jax.lax.Precision.HIGHEST) + chroma_offset
  luma = _quantise_blocks(ycbcr[:, 0] - 128, luma_table) + 128
  n = flat.shape[0]
  chroma = ycbcr[:, 1:].reshape(n, 2, padded_h // 2, 2, padded_w // 2, 2).mean((3, 5))
  chroma = _quantise_blocks(chroma.reshape(2 * n, padded_h // 2, padded_w // 2) - 128,
                            chroma_table) + 128
  chroma = jnp.repeat(jnp.repeat(chroma.reshape(n, 2, padded_h // 2, padded_w // 2), 2, -2), 2, -1)
  ycbcr = jnp.concatenate([luma[:, None], chroma], axis=1) - chroma_offset
  rgb = jnp.einsum('ndhw,cd->nhwc', ycbcr, jnp.asarray(np.linalg.inv(_RGB_TO_YCBCR)),
                   precision=jax.lax.Precision.HIGHEST)
  rgb = jnp.clip(jnp.round(rgb[:, :height, :width]), 0, 255)
  return rgb.reshape(shape)


# --- one video, a batch ------------------------------------------------------------------------

def degrade_video(frames: jax.Array, kind: jax.Array, severity: jax.Array, key: jax.Array,
                  radius_scale: float = 1.0) -> jax.Array:
  """One video's frames (T, H, W, C), any dtype in [0, 255], degraded by `KINDS[kind]` at
  `severity`, every frame alike (one motion angle per video). uint8 frames come back as uint8
  by truncation, as imagecorruptions' `np.uint8` does."""
  images = frames.astype(jnp.float32)
  angle_key, noise_key = jax.random.split(key)
  angle = jax.random.uniform(angle_key, (), jnp.float32, -MAX_MOTION_ANGLE, MAX_MOTION_ANGLE)
  branches = {
      'clean': lambda x: x,
      'motion_blur': lambda x: motion_blur(x, severity, angle, radius_scale),
      'defocus_blur': lambda x: defocus_blur(x, severity, radius_scale),
      'gaussian_noise': lambda x: gaussian_noise(x, severity, noise_key),
      'jpeg': lambda x: jpeg(x, severity),
      'h264': lambda x: x,
  }
  degraded = jax.lax.switch(jnp.clip(kind, 0, len(KINDS) - 1), [branches[k] for k in KINDS], images)
  if jnp.issubdtype(frames.dtype, jnp.integer):
    return jnp.floor(degraded).astype(frames.dtype)
  return degraded.astype(frames.dtype)


def degrade_batch(frames: jax.Array, kinds: jax.Array, severities: jax.Array, key: jax.Array,
                  radius_scale: float = 1.0) -> jax.Array:
  """(B, T, H, W, C) frames, one (kind, severity) per video. Videos run one after another
  (`lax.map`), so each computes only its own branch of the switch."""
  keys = jax.random.split(key, frames.shape[0])
  return jax.lax.map(lambda args: degrade_video(*args, radius_scale=radius_scale),
                     (frames, kinds.astype(jnp.int32), severities.astype(jnp.int32), keys))


# --- the mixed-quality protocol (host side) ----------------------------------------------------

@dataclasses.dataclass(frozen=True)
class MixingProtocol:
  """Which video is degraded, how and how much [reconstructed: the paper's recipe is not public]."""
  # A video is degraded with this probability (else it stays HQ).
  probability: float = 0.5
  # Kinds drawn uniformly among (names of KINDS other than 'clean'); the abstract names motion
  # blur, defocus blur and compression artefacts.
  kinds: tuple[str, ...] = ('motion_blur', 'defocus_blur', 'jpeg', 'h264')
  # Severities drawn uniformly among these (ImageNet-C's 1…5); one per video, all frames alike.
  severities: tuple[int, ...] = SEVERITIES
  # Blur radii × this for frames larger than 224 pixels (≈ 1.9 at 420).
  radius_scale: float = 1.0

  def __post_init__(self):
    unknown = set(self.kinds) - set(KINDS[1:])
    if unknown or not self.kinds:
      raise ValueError(f'degradation kinds must be among {KINDS[1:]}, got {self.kinds}')
    if not set(self.severities) <= set(SEVERITIES) or not self.severities:
      raise ValueError(f'severities must be among {SEVERITIES}, got {self.severities}')
    if not 0 <= self.probability <= 1:
      raise ValueError(f'probability must lie in [0, 1], got {self.probability}')


@dataclasses.dataclass(frozen=True)
class Draw:
  kind: str      # one of KINDS
  severity: int  # 1…5 (0 for 'clean')

  @property
  def kind_index(self) -> int:
    return KINDS.index(self.kind)

  @property
  def crf(self) -> int | None:
    """The H.264 CRF of an 'h264' draw."""
    return H264_CRF[self.severity - 1] if self.kind == 'h264' else None


def draw(protocol: MixingProtocol, seed: int, video: str) -> Draw:
  """The degradation of `video` under `protocol`: a function of (seed, video id) only, so
  preparation (H.264), training and evaluation agree without sharing state."""
  rng = np.random.default_rng([seed, zlib.crc32(video.encode())])
  if rng.random() >= protocol.probability:
    return Draw('clean', 0)
  kind = protocol.kinds[rng.integers(len(protocol.kinds))]
  return Draw(kind, int(protocol.severities[rng.integers(len(protocol.severities))]))


def draws(protocol: MixingProtocol, seed: int, videos: Sequence[str]) -> dict[str, Draw]:
  return {video: draw(protocol, seed, video) for video in videos}


def protocol_from_config(config) -> MixingProtocol:
  """From a ConfigDict block {probability, kinds, severities, radius_scale}."""
  fields = dict(config)
  return MixingProtocol(**{k: tuple(v) if isinstance(v, (list, tuple)) else v
                           for k, v in fields.items()})
