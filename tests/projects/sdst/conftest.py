"""Tiny SDST configs and batches shared by the SDST tests."""
import ml_collections
import numpy as np
import pytest

from jaxvg.projects.sdst.config import base


def tiny_config(**model_overrides) -> ml_collections.ConfigDict:
  """A few thousand parameters: widths small enough to compile in seconds on a CPU."""
  c = base()
  m = c.model
  m.dims, m.num_heads, m.num_layers, m.num_queries = 16, 2, 3, 4
  m.video_dims, m.query_dims = 12, 10
  m.deform_heads, m.deform_points = 2, 3
  m.dropout, m.droppath = 0.0, 0.0
  m.scan_unroll = 1             # a rolled loop: compiles several times faster at these sizes
  for key, value in model_overrides.items():
    setattr(m, key, value)
  return c


def random_sample(rng: np.random.Generator, config, num_clips: int, num_tokens: int,
                  windows: list[tuple[float, float]]) -> dict[str, np.ndarray]:
  """One unpadded sample: features (per clip and layer: one vector, or `model.num_tokens` CLIP
  tokens), windows in clip units, saliency, a positive clip."""
  m = config.model
  clip_tokens = (m.num_tokens,) if m.num_tokens else ()
  saliency = np.zeros(num_clips, np.float32)
  for s, e in windows:
    saliency[int(s):int(np.ceil(e))] = rng.uniform(0.25, 1.0)
  positives = np.flatnonzero(saliency > 0)
  return dict(
      video=rng.normal(size=(num_clips, m.num_layers) + clip_tokens + (m.video_dims,)
                       ).astype(np.float32),
      query=rng.normal(size=(num_tokens, m.num_layers, m.query_dims)).astype(np.float32),
      windows=np.asarray(windows, np.float32).reshape(-1, 2), saliency=saliency,
      pos_clip=int(positives[0]) if positives.size else 0)


def collate(samples: list[dict | None], t_len: int, l_len: int, max_windows: int
            ) -> dict[str, np.ndarray]:
  """Pads samples (None = a padding sample) to (t_len, l_len, max_windows) with masks."""
  real = next(s for s in samples if s is not None)
  b = len(samples)
  batch = dict(video=np.zeros((b, t_len) + real['video'].shape[1:], np.float32),
               video_mask=np.zeros((b, t_len), bool),
               query=np.zeros((b, l_len) + real['query'].shape[1:], np.float32),
               query_mask=np.zeros((b, l_len), bool),
               windows=np.zeros((b, max_windows, 2), np.float32),
               window_mask=np.zeros((b, max_windows), bool),
               saliency=np.zeros((b, t_len), np.float32),
               pos_clip=np.zeros((b,), np.int32),
               sample_mask=np.array([s is not None for s in samples]))
  for i, s in enumerate(samples):
    if s is None:
      continue
    t, l, g = s['video'].shape[0], s['query'].shape[0], s['windows'].shape[0]
    batch['video'][i, :t], batch['video_mask'][i, :t] = s['video'], True
    batch['query'][i, :l], batch['query_mask'][i, :l] = s['query'], True
    batch['windows'][i, :g], batch['window_mask'][i, :g] = s['windows'], True
    batch['saliency'][i, :t], batch['pos_clip'][i] = s['saliency'], s['pos_clip']
  return batch


@pytest.fixture
def config():
  return tiny_config()
