"""The released SDST InternVideo2-1B features, one `.npz` per key:

  <video_dir>/<vid>.npz   'visual_feats_interm_pooled' (T, K, 768): one vector per clip and layer
                          (older releases: 'visual_feats_pooled' (T, 768), one layer)
  <query_dir>/<qid>.npz   'text_feats' (K, L, 1024): every token of K text-encoder layers

Arrays come back in the layout of `jaxvg.data.FeatureCache` — video (T, K, Dv), query (L, K, Dq)
— so both caches feed the same batch keys. `.npz` members are compressed and cannot be
memory-mapped; a file holds one video (≈1 MB), read whole. The last `num_layers` layers are
kept (the release stores K = 5), optionally L2-normalised per vector (the Moment-DETR loaders'
convention).
"""
from __future__ import annotations

import os

import numpy as np

VIDEO_KEYS = ('visual_feats_interm_pooled', 'visual_feats_pooled')
QUERY_KEY = 'text_feats'


def _l2_normalize(x: np.ndarray) -> np.ndarray:
  norm = np.linalg.norm(x.astype(np.float32), axis=-1, keepdims=True)
  return (x / np.maximum(norm, 1e-12)).astype(np.float32)


class InternVideo2Features:
  """Reads video and query `.npz` files; checks each array's layout against the model's."""

  def __init__(self, video_dir: str, query_dir: str, *, num_layers: int, video_dims: int,
               query_dims: int, normalize: bool = True):
    self.video_dir = video_dir
    self.query_dir = query_dir
    self.num_layers = num_layers
    self.video_shape = (num_layers, video_dims)
    self.query_shape = (num_layers, query_dims)
    self.normalize = normalize

  @classmethod
  def from_config(cls, config) -> 'InternVideo2Features':
    """Directories from config.data.video_feature_dir / query_feature_dir, else
    <feature_dir>/internvideo2_vid and <feature_dir>/internvideo2_txt."""
    d, m = config.data, config.model
    video_dir = d.get('video_feature_dir', '') or os.path.join(d.feature_dir, 'internvideo2_vid')
    query_dir = d.get('query_feature_dir', '') or os.path.join(d.feature_dir, 'internvideo2_txt')
    return cls(video_dir, query_dir, num_layers=m.num_layers, video_dims=m.video_dims,
               query_dims=m.query_dims, normalize=d.get('normalize_features', True))

  def _open(self, directory: str, key: str) -> tuple[str, np.lib.npyio.NpzFile]:
    path = os.path.join(directory, f'{key}.npz')
    try:
      return path, np.load(path)
    except FileNotFoundError:
      raise FileNotFoundError(f'feature file {path!r} not found') from None
    except (ValueError, OSError) as e:
      raise ValueError(f'feature file {path!r} is unreadable: {e}') from None

  def _layers(self, array: np.ndarray, axis: int, path: str, name: str) -> np.ndarray:
    if array.shape[axis] < self.num_layers:
      raise ValueError(f'feature file {path!r}: {name!r} has {array.shape[axis]} layers, fewer '
                       f'than model.num_layers={self.num_layers}')
    return np.take(array, np.arange(array.shape[axis] - self.num_layers, array.shape[axis]),
                   axis=axis)

  def video(self, vid: str) -> np.ndarray:
    """(T, K, Dv) float32 clip features of `vid`, layers shallow to deep."""
    path, npz = self._open(self.video_dir, vid)
    with npz:
      name = next((k for k in VIDEO_KEYS if k in npz.files), None)
      if name is None:
        raise ValueError(f'feature file {path!r} holds {npz.files}; expected one of {VIDEO_KEYS}')
      array = npz[name]
    if name == 'visual_feats_pooled' and array.ndim == 2:
      array = array[:, None]
    if array.ndim != 3 or array.shape[2] != self.video_shape[1]:
      raise ValueError(f'feature file {path!r}: {name!r} has shape {array.shape}; expected '
                       f'(T, K, {self.video_shape[1]})')
    array = self._layers(array, 1, path, name)
    return _l2_normalize(array) if self.normalize else array.astype(np.float32)

  def query(self, key: str) -> np.ndarray:
    """(L, K, Dq) float32 token features of query `key` (the qid), layers shallow to deep."""
    path, npz = self._open(self.query_dir, key)
    with npz:
      if QUERY_KEY not in npz.files:
        raise ValueError(f'feature file {path!r} holds {npz.files}; expected {QUERY_KEY!r}')
      array = npz[QUERY_KEY]
    if array.ndim != 3 or array.shape[2] != self.query_shape[1]:
      raise ValueError(f'feature file {path!r}: {QUERY_KEY!r} has shape {array.shape}; expected '
                       f'(K, L, {self.query_shape[1]})')
    array = np.swapaxes(self._layers(array, 0, path, QUERY_KEY), 0, 1)
    return _l2_normalize(array) if self.normalize else array.astype(np.float32)

  def num_clips(self, vid: str) -> int:
    return int(self.video(vid).shape[0])
