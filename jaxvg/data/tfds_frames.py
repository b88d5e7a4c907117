"""TFDS metadata for a frames directory, so TFDS opens the very files jaxvg writes.

`write_metadata(root, index)` makes `<root>/tfds/`: one relative symlink per video file, named
as TFDS names shards (`jaxvg_frames-full.array_record-0000k-of-0000n`, videos in sorted order),
plus `dataset_info.json` / `features.json` describing one split 'full' whose examples are the
frames (`jaxvg.data.frames.frame_example`). Then

  tfds.builder_from_directory(f'{root}/tfds').as_data_source()['full'][i]

is a random-access source for Grain: {'image', 'vid', 'index', 'frame_id'}; frame `index` of
video `vid` sits at `offsets(index)[vid] + index`. No TensorFlow is needed.
"""
from __future__ import annotations

import os

import numpy as np

TFDS_DIR = 'tfds'
DATASET_NAME = 'jaxvg_frames'
SPLIT = 'full'
TEMPLATE = '{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}'


def features(fmt: str):
  """The TFDS FeaturesDict that parses `frame_example` records of format `fmt`."""
  import tensorflow_datasets as tfds
  if fmt == 'raw':
    image = tfds.features.Tensor(shape=(None, None, 3), dtype=np.uint8,
                                 encoding=tfds.features.Encoding.BYTES)
  else:
    image = tfds.features.Image(shape=(None, None, 3), encoding_format='jpeg')
  return tfds.features.FeaturesDict({
      'image': image, 'vid': tfds.features.Text(), 'index': tfds.features.Scalar(np.int64),
      'frame_id': tfds.features.Scalar(np.int64)})


def offsets(index: dict[str, dict]) -> dict[str, int]:
  """vid -> position of its frame 0 in the TFDS split (videos in sorted order)."""
  vids = sorted(index)
  starts = np.cumsum([0] + [index[v]['num_frames'] for v in vids])
  return {vid: int(start) for vid, start in zip(vids, starts)}


def write_metadata(root: str, index: dict[str, dict]) -> str | None:
  """Writes `<root>/tfds` for the frames of `index` (a `build_index` result); returns its path,
  or None (and no metadata) when the videos mix frame formats."""
  import tensorflow_datasets as tfds
  out = os.path.join(root, TFDS_DIR)
  os.makedirs(out, exist_ok=True)
  for name in os.listdir(out):
    os.remove(os.path.join(out, name))
  formats = {entry['format'] for entry in index.values()}
  if len(formats) != 1:
    return None
  vids = sorted(index)
  template = tfds.core.ShardedFileTemplate(
      data_dir=out, template=TEMPLATE, dataset_name=DATASET_NAME, split=SPLIT,
      filetype_suffix='array_record')
  for shard, vid in enumerate(vids):
    link = template.sharded_filepath(shard_index=shard, num_shards=len(vids))
    os.symlink(os.path.join('..', index[vid]['file']), link)
  split = tfds.core.SplitInfo(
      name=SPLIT, shard_lengths=[index[v]['num_frames'] for v in vids], num_bytes=0,
      filename_template=template)
  tfds.folder_dataset.write_metadata(
      data_dir=out, features=features(formats.pop()), split_infos=[split],
      filename_template=TEMPLATE, check_data=False,
      description='jaxvg pre-decoded frames: one example per frame (jaxvg.data.frames).')
  return out


def data_source(root: str):
  """The TFDS random-access source over the frames directory `root`."""
  import tensorflow_datasets as tfds
  return tfds.builder_from_directory(os.path.join(root, TFDS_DIR)).as_data_source()[SPLIT]
