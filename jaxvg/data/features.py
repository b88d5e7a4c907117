"""Cached multi-layer CLIP features in the official R²-Tuning layout, memory-mapped.

  <video_dir>/<vid>.npy   (T, K, P, Dv) float16, e.g. clip_b32_vid_k4: (T, 4, 50, 768)
  <query_dir>/<key>.npy   (L, K, Dq)    float16, e.g. clip_b32_txt_k4: (L, 4, 512)

The query key is the qid (TVSum/YouTube: the vid). Files are opened with mmap_mode='r', so only the
rows a batch touches are read; a split is never held in memory.
"""
from __future__ import annotations

import os

import numpy as np


class FeatureCache:
  """Reads video and query features; checks each file's trailing shape against the model's."""

  def __init__(self, video_dir: str, query_dir: str, *, num_layers: int, num_tokens: int,
               video_dims: int, query_dims: int):
    self.video_dir = video_dir
    self.query_dir = query_dir
    self.video_shape = (num_layers, num_tokens, video_dims)
    self.query_shape = (num_layers, query_dims)

  @classmethod
  def from_config(cls, config) -> 'FeatureCache':
    """Directories from config.data.feature_dir (+ the official sub-directory names)."""
    root, m = config.data.feature_dir, config.model
    video_dir = config.data.get('video_feature_dir', '') or os.path.join(
        root, f'clip_b32_vid_k{m.num_layers}')
    query_dir = config.data.get('query_feature_dir', '') or os.path.join(
        root, f'clip_b32_txt_k{m.num_layers}')
    return cls(video_dir, query_dir, num_layers=m.num_layers, num_tokens=m.num_tokens,
               video_dims=m.video_dims, query_dims=m.query_dims)

  def _load(self, directory: str, key: str, tail: tuple[int, ...]) -> np.ndarray:
    path = os.path.join(directory, f'{key}.npy')
    try:
      array = np.load(path, mmap_mode='r')
    except FileNotFoundError:
      raise FileNotFoundError(f'feature file {path!r} not found') from None
    except ValueError as e:
      raise ValueError(f'feature file {path!r} is unreadable: {e}') from None
    if array.ndim != len(tail) + 1 or array.shape[1:] != tail:
      raise ValueError(f'feature file {path!r} has shape {array.shape}; expected (N, '
                       f'{", ".join(map(str, tail))})')
    return array

  def video(self, vid: str) -> np.ndarray:
    """(T, K, P, Dv) memory-mapped video features of `vid`."""
    return self._load(self.video_dir, vid, self.video_shape)

  def query(self, key: str) -> np.ndarray:
    """(L, K, Dq) memory-mapped text features of `key` (qid, or vid for TVSum/YouTube)."""
    return self._load(self.query_dir, key, self.query_shape)

  def num_clips(self, vid: str) -> int:
    return int(self.video(vid).shape[0])
