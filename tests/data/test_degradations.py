"""The on-device degradations against the `imagecorruptions` package (fixtures written by
tests/fixtures/nst_degradations_make_fixtures.py) at every severity, and the mixing protocol."""
import io
import pathlib

import numpy as np
import pytest
from PIL import Image

import jax
import jax.numpy as jnp

from jaxvg.data import degradations as dg

FIXTURES = np.load(pathlib.Path(__file__).parents[1] / 'fixtures' / 'nst_degradations.npz')
IMAGE = FIXTURES['image'].astype(np.float32)
SEVERITY = jnp.arange(1, 6)


@jax.jit
def _all_severities(image, angles):
  """Every op at severities 1…5 in one compiled call (severity traced, as in a step)."""
  motion = jax.vmap(lambda s, a: dg.motion_blur(image, s, a))(SEVERITY, angles)
  defocus = jax.vmap(lambda s: dg.defocus_blur(image, s))(SEVERITY)
  jpeg = jax.vmap(lambda s: dg.jpeg(image, s))(SEVERITY)
  noise = jax.vmap(lambda s: dg.gaussian_noise(jnp.full((64, 64, 3), 100.0), s,
                                                jax.random.key(s)))(SEVERITY)
  return motion, defocus, jpeg, noise


@pytest.fixture(scope='module')
def outputs():
  angles = jnp.array([FIXTURES[f'motion_angle_{s}'] for s in range(1, 6)])
  return jax.tree.map(np.asarray, _all_severities(IMAGE, angles))


@pytest.mark.parametrize('severity', dg.SEVERITIES)
def test_defocus_kernel_matches_cv2(severity):
  kernel = dg.disk_kernel(*dg.DEFOCUS_BLUR[severity - 1])
  np.testing.assert_allclose(kernel, FIXTURES[f'defocus_kernel_{severity}'], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize('severity', dg.SEVERITIES)
def test_blurs_match_imagecorruptions(outputs, severity):
  motion, defocus, _, _ = outputs
  np.testing.assert_allclose(defocus[severity - 1], FIXTURES[f'defocus_{severity}'], atol=5e-4)
  np.testing.assert_allclose(motion[severity - 1], FIXTURES[f'motion_{severity}'], atol=5e-4)
  assert np.abs(motion[severity - 1] - IMAGE).mean() > 2  # the test image is really blurred


def test_motion_blur_stops_where_the_streak_leaves_the_image():
  out = dg.motion_blur(jnp.asarray(IMAGE), 5, 0.0)
  np.testing.assert_allclose(out, FIXTURES['motion_break'], atol=5e-4)


@pytest.mark.parametrize('severity', dg.SEVERITIES)
def test_gaussian_noise_statistics(outputs, severity):
  noisy = outputs[3][severity - 1]
  # Same distribution as imagecorruptions' (NumPy's draw): mean and spread of a clipped
  # N(100, (255 c)²) over 12,288 pixels agree to within a few standard errors.
  assert abs(noisy.mean() - FIXTURES[f'noise_mean_{severity}']) < 3.0
  reference_std = FIXTURES[f'noise_std_{severity}']
  assert abs(noisy.std() - reference_std) / reference_std < 0.03


def _numpy_jpeg(image, quality):
  """The same JPEG core in float64 NumPy/SciPy (scipy's orthonormal DCT)."""
  import scipy.fft
  tables = dg.quantisation_tables(quality)
  h, w, _ = image.shape
  ph, pw = -(-h // 16) * 16, -(-w // 16) * 16
  padded = np.pad(image.astype(np.float64), ((0, ph - h), (0, pw - w), (0, 0)), mode='edge')
  m = dg._RGB_TO_YCBCR.astype(np.float64)
  ycc = padded @ m.T + [0, 128, 128]

  def quantise(plane, table):
    blocks = plane.reshape(plane.shape[0] // 8, 8, plane.shape[1] // 8, 8).transpose(0, 2, 1, 3)
    coefficients = scipy.fft.dctn(blocks - 128, axes=(2, 3), norm='ortho')
    coefficients = np.round(coefficients / table) * table
    restored = scipy.fft.idctn(coefficients, axes=(2, 3), norm='ortho') + 128
    return restored.transpose(0, 2, 1, 3).reshape(plane.shape)
  luma = quantise(ycc[..., 0], tables[0])
  chroma = [quantise(ycc[..., c].reshape(ph // 2, 2, pw // 2, 2).mean((1, 3)), tables[1])
            .repeat(2, 0).repeat(2, 1) for c in (1, 2)]
  rgb = (np.stack([luma, *chroma], -1) - [0, 128, 128]) @ np.linalg.inv(m).T
  return np.clip(np.round(rgb[:h, :w]), 0, 255)


@pytest.mark.parametrize('severity', dg.SEVERITIES)
def test_jpeg_matches_numpy_and_approaches_pil(outputs, severity):
  ours = outputs[2][severity - 1]
  quality = dg.JPEG_QUALITY[severity - 1]
  reference = _numpy_jpeg(IMAGE, quality)
  # float32 vs float64 may round a coefficient differently at a .5 boundary: rare, local.
  assert np.mean(np.abs(ours - reference) > 1) < 0.01
  pil = FIXTURES[f'jpeg_{severity}'].astype(np.float32)
  # PIL's encoder differs in chroma filtering and rounding; ours is a stand-in for its blocking.
  assert np.abs(ours - pil).mean() < 0.4 * np.abs(IMAGE - pil).mean()


def test_quantisation_tables_follow_libjpeg():
  np.testing.assert_array_equal(dg.quantisation_tables(50), np.stack([dg._LUMA_TABLE,
                                                                      dg._CHROMA_TABLE]))
  # quality 10: scale 500, so 16 → (16·500 + 50) // 100 = 80; chroma 99 → 255 (clamped).
  tables = dg.quantisation_tables(10)
  assert tables[0, 0, 0] == 80 and tables[1, 7, 7] == 255
  d = dg.dct_matrix()
  np.testing.assert_allclose(d @ d.T, np.eye(8), atol=1e-6)


def test_degrade_batch_per_video_kinds():
  frames = jnp.asarray(np.stack([np.stack([FIXTURES['image']] * 2)] * 3))  # (3, 2, H, W, 3) uint8
  kinds = jnp.array([dg.KINDS.index(k) for k in ('clean', 'defocus_blur', 'h264')])
  out = np.asarray(jax.jit(dg.degrade_batch)(frames, kinds, jnp.array([0, 3, 5]),
                                             jax.random.key(0)))
  assert out.dtype == np.uint8
  np.testing.assert_array_equal(out[0], frames[0])
  np.testing.assert_array_equal(out[2], frames[2])  # H.264 happened at preparation time
  expected = np.floor(FIXTURES['defocus_3'])  # imagecorruptions' np.uint8 truncates
  assert np.mean(out[1, 1] != expected) < 0.02 and np.abs(out[1, 1] - expected).max() <= 1


def test_mixing_protocol_is_deterministic_per_seed_and_video():
  protocol = dg.MixingProtocol(probability=0.5, kinds=('motion_blur', 'h264'), severities=(2, 4))
  videos = [f'video_{i}' for i in range(400)]
  first = dg.draws(protocol, 7, videos)
  assert first == dg.draws(protocol, 7, list(reversed(videos)))
  assert first != dg.draws(protocol, 8, videos)
  kinds = [d.kind for d in first.values()]
  assert 0.4 < kinds.count('clean') / len(kinds) < 0.6
  assert {d.severity for d in first.values() if d.kind != 'clean'} == {2, 4}
  assert {d.crf for d in first.values() if d.kind == 'h264'} == {30, 44}
  assert all(dg.draw(dg.MixingProtocol(probability=0.0), 0, v).kind == 'clean' for v in videos[:20])
  with pytest.raises(ValueError, match='kinds'):
    dg.MixingProtocol(kinds=('fog',))
