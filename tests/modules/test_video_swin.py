"""Video-Swin-T against the OFFICIAL CG-STVG tower (tests/fixtures/video_swin_official_fixtures.py:
seeded weights in the Kinetics-400 release layout, loaded by the official loader, run at a tiny
size through the same code path), and its key mapping against the official state-dict listing."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvg.modules.video_swin import VIDEO_SWIN_T, VideoSwin, VideoSwinArch
from jaxvg.projects.cgstvg.convert import (load_video_swin, video_swin_from_official,
                                           video_swin_official_shapes)
from jaxvg.convert.clip import read_torch_archive

FIXTURES = pathlib.Path(__file__).parents[1] / 'fixtures'
TINY = VideoSwinArch(embed_dim=4, depths=(2, 2, 2, 2), heads=(1, 1, 2, 2), window=(4, 3, 3))


@pytest.fixture(scope='module')
def reference():
  ref = np.load(FIXTURES / 'video_swin_tiny_ref.npz')
  return {k: ref[k] for k in ref.files}


@pytest.fixture(scope='module')
def release_params():
  return load_video_swin(FIXTURES / 'video_swin_tiny_k400.pth', TINY)


def stages(reference):
  return [reference[f'stage{i}'].transpose(0, 2, 3, 1) for i in range(4)]   # (T, h, w, C)


def relative_error(got, want):
  return float(np.abs(np.asarray(got) - want).max() / np.abs(want).max())


def test_every_stage_matches_the_official_tower(reference, release_params):
  video = jnp.asarray(reference['video'].transpose(0, 2, 3, 1))[None]   # (1, T, H, W, 3)
  outputs = jax.jit(VideoSwin(TINY).apply)(release_params, video)
  for got, want in zip(outputs, stages(reference)):
    assert got.shape[1:] == want.shape
    assert relative_error(got[0], want) < 1e-4


def test_padded_frames_leave_the_real_frames_as_the_official_run(reference, release_params):
  # 6 real frames in a bucket of 12: the official zero padding (to 8) is reproduced and the
  # keys beyond it are masked, whatever the padded frames hold.
  video = reference['video'].transpose(0, 2, 3, 1)
  noise = np.random.default_rng(0).normal(size=(6,) + video.shape[1:]).astype(np.float32)
  padded = jnp.asarray(np.concatenate([video, noise]))[None]
  frame_mask = jnp.arange(12)[None] < 6
  apply = jax.jit(VideoSwin(TINY).apply)
  outputs = apply(release_params, padded, frame_mask)
  for got, want in zip(outputs, stages(reference)):
    assert relative_error(got[0, :6], want) < 1e-4
  as_real = apply(release_params, padded, jnp.ones_like(frame_mask))   # the noise as frames
  assert relative_error(as_real[-1][0, :6], stages(reference)[-1]) > 1e-2


def test_a_longer_patch_embedding_reads_its_neighbour_frames_and_not_the_padding(reference,
                                                                                release_params):
  # patch_frames=3 with the release kernel as its centre slice and zeros around it is the
  # release tower; with that kernel as its first slice, frame t reads frame t-1 (zeros before
  # the clip). Padded frames are not read by the last real one.
  arch = VideoSwinArch(**{**TINY.__dict__, 'patch_frames': 3})
  kernel = release_params['params']['patch_embed_proj']['kernel']           # (1, 4, 4, 3, C)

  def with_kernel(slices):
    proj = dict(release_params['params']['patch_embed_proj'], kernel=jnp.concatenate(slices))
    return {'params': dict(release_params['params'], patch_embed_proj=proj)}

  video = jnp.asarray(reference['video'].transpose(0, 2, 3, 1))[None]     # (1, 6, H, W, 3)
  tower = jax.jit(lambda p, x, m=None: VideoSwin(arch).apply(p, x, m)[-1])
  release = jax.jit(lambda x: VideoSwin(TINY).apply(release_params, x)[-1])
  zero = jnp.zeros_like(kernel)
  centred = tower(with_kernel([zero, kernel, zero]), video)
  assert relative_error(centred[0], np.asarray(release(video)[0])) < 1e-5
  previous = tower(with_kernel([kernel, zero, zero]), video)
  shifted = jnp.concatenate([jnp.zeros_like(video[:, :1]), video[:, :-1]], axis=1)
  assert relative_error(previous[0], np.asarray(release(shifted)[0])) < 1e-5
  params = with_kernel([kernel, kernel, kernel])
  noise = jnp.asarray(np.random.default_rng(1).normal(size=(1, 6) + video.shape[2:]), jnp.float32)
  padded = tower(params, jnp.concatenate([video, noise], axis=1), jnp.arange(12)[None] < 6)
  assert relative_error(padded[0, :6], np.asarray(tower(params, video)[0])) < 1e-4


def test_cgstvg_checkpoint_keys_load_the_same_weights(reference, release_params):
  wrapper = {k: v for k, v in reference.items() if k.startswith('vid.')}
  variables, ignored = video_swin_from_official(wrapper, TINY)
  assert all(k.endswith('relative_position_index') for k in ignored)
  same = jax.tree.map(lambda a, b: np.array_equal(np.asarray(a), b), release_params, variables)
  assert all(jax.tree.leaves(same))


def test_loader_names_missing_misshaped_and_unexpected_keys():
  state = read_torch_archive(FIXTURES / 'video_swin_tiny_k400.pth')
  del state['state_dict.backbone.layers.1.blocks.0.mlp.fc1.bias']
  state['state_dict.backbone.layers.2.downsample.reduction.weight'] = np.zeros((3, 3))
  state['state_dict.backbone.layers.0.blocks.1.attn.extra'] = np.zeros(2)
  with pytest.raises(ValueError) as info:
    video_swin_from_official(state, TINY, where='k400.pth')
  message = str(info.value)
  assert 'missing key: layers.1.blocks.0.mlp.fc1.bias' in message
  assert 'wrong shape: downsamples.2.reduction.weight: (3, 3), expected (32, 64)' in message
  assert 'unexpected key: layers.0.blocks.1.attn.extra' in message
  assert message.startswith('k400.pth:')


def test_full_size_keys_are_the_official_vid_keys(shared):
  official = {}
  for line in (shared / 'reference' / 'cgstvg_hcstvg_state_dict.tsv').read_text().splitlines():
    if line.startswith(('#', 'key\t')):
      continue
    key, shape, _, kind = line.split('\t')[:4]
    if key.startswith('vid.') and kind != 'buffer':
      official[key[4:]] = tuple(int(n) for n in shape.split('x'))
  assert video_swin_official_shapes(VIDEO_SWIN_T) == official
