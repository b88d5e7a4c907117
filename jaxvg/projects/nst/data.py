"""The mixed-quality benchmark's data: any tube task's adapter, each video's degradation drawn
on the host (`degradations.draw`, a function of the seed and the video id only) and applied on
device inside the step (`jaxvg.projects.nst.cgstvg.degrade`).

Splits (`degrade.split`): 'hq' (nothing degraded), 'lq' (every video degraded), 'mixed' (the
protocol's probability). A video's kind and severity come from the same random stream in every
split, so the mixed split's degraded videos are degraded exactly as in the LQ split and its
clean ones are the HQ split's. Training redraws per epoch (`degrade.train_per_epoch`), so a
video is seen both clean and degraded.
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Sequence

import ml_collections
import numpy as np

from jaxvg.data import degradations as dg
from jaxvg.registry import DataAdapter

SPLITS = ('hq', 'lq', 'mixed')


def split_protocol(protocol: dg.MixingProtocol, split: str) -> dg.MixingProtocol:
  """The protocol of a benchmark split."""
  if split not in SPLITS:
    raise ValueError(f'degrade.split must be one of {SPLITS}, got {split!r}')
  if split == 'mixed':
    return protocol
  return dataclasses.replace(protocol, probability=1.0 if split == 'lq' else 0.0)


def protocol(config: ml_collections.ConfigDict) -> dg.MixingProtocol:
  """The mixing protocol of `config.degrade` (probability, kinds, severities, radius_scale)."""
  d = config.degrade
  return dg.protocol_from_config({k: d[k] for k in ('probability', 'kinds', 'severities',
                                                    'radius_scale')})


@dataclasses.dataclass(frozen=True)
class MixedQualityData:
  """A `DataAdapter` adding each sample's `degrade_kind`, `degrade_severity` (int32) and
  `degrade_seed` (uint32, the key of its random parts) to the inner adapter's batch, and the
  kind's name to the metadata (`degradation`). Videos drawn 'h264' are read through `h264`,
  the adapter over frames re-encoded by `python -m jaxvg.prepare degrade`. `inner` is a tube
  adapter (`rows`, `collate_rows`: with test halves an example is two batch rows).
  """
  inner: DataAdapter
  protocol: dg.MixingProtocol
  seed: int
  per_epoch: bool = False
  h264: DataAdapter | None = None

  def __post_init__(self):
    if 'h264' in self.protocol.kinds and self.protocol.probability > 0 and self.h264 is None:
      raise ValueError("degrade.kinds has 'h264' but no degrade.h264_frames_dir: H.264 frames "
                       'come from `python -m jaxvg.prepare degrade` then `prepare stvg_frames`')

  def _draw(self, record: Any, epoch: int) -> tuple[dg.Draw, int]:
    name = f'{record.vid}@{epoch}' if self.per_epoch else record.vid
    draw = dg.draw(self.protocol, self.seed, name)
    return draw, zlib.crc32(f'{self.seed}:{name}'.encode())

  def length(self, record: Any) -> int:
    return self.inner.length(record)

  def example(self, record: Any, *, epoch: int, index: int) -> dict[str, Any]:
    draw, key = self._draw(record, epoch)
    source = self.h264 if draw.kind == 'h264' else self.inner
    return {**source.example(record, epoch=epoch, index=index), 'degrade_kind': draw.kind_index,
            'degrade_severity': draw.severity, 'degrade_seed': key}

  def collate(self, examples: Sequence[dict | None], length: int
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    rows = self.inner.rows(examples)     # with test halves, two rows per example
    batch, meta = self.inner.collate_rows(rows, length)
    for name, dtype in (('degrade_kind', np.int32), ('degrade_severity', np.int32),
                        ('degrade_seed', np.uint32)):
      batch[name] = np.array([0 if r is None else r[name] for r in rows], dtype)
    meta['degradation'] = [dg.KINDS[kind] for kind in batch['degrade_kind']]
    return batch, meta
