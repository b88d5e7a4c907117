"""Tube examples end to end on the synthetic tube benchmark: prepared frames -> examples -> a
static-shape batch -> (the batch's own targets as predictions) -> post-processing -> the STVG
metric gives exactly what the sampling allows; padding samples and frames are masked."""
import os

import numpy as np
import pytest

from jaxvg import evaluation
from jaxvg.data import frames as frames_lib
from jaxvg.data import stvg_readers
from jaxvg.data import synthetic_tubes
from jaxvg.data import tube_examples
from jaxvg.postprocess import tubes
from jaxvg.prepare import stvg_frames as prepare_stvg


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('tube_examples'))
  out = prepare_stvg.ensure_synthetic_tube_frames(root, 'tiny', sample_fps=3.2, short_side=48)
  paths = synthetic_tubes.ensure_synthetic_tubes(root, 'tiny')
  records = stvg_readers.read_hcstvg(paths.val_file).records
  return records, frames_lib.FrameReader(out)


def _examples(records, reader, max_frames, **kwargs):
  return [tube_examples.make_tube_example(r, reader.read(r.video_key),
                                          reader.frame_ids(r.video_key), max_frames=max_frames,
                                          **kwargs) for r in records]


def test_batch_targets_score_as_sampled(prepared):
  records, reader = prepared
  examples = _examples(records, reader, max_frames=48)
  batch, meta = tube_examples.collate_tubes(examples + [None], frame_buckets=(16, 48, 96),
                                            height=48, width=72)
  b = len(records) + 1
  assert batch['frames'].shape == (b, 48, 48, 72, 3) and batch['boxes'].shape == (b, 48, 4)
  assert not batch['sample_mask'][-1] and not batch['frame_mask'][-1].any()
  assert batch['pixel_mask'][0].sum() == 48 * 64       # 120x160 -> 48x64, padded to 48x72
  assert np.all(batch['frames'][:, :, :, 64:] == 0)
  in_span = batch['in_span'] & batch['frame_mask']
  assert np.array_equal(batch['in_span'], in_span) and np.all(batch['box_mask'] <= in_span)
  rows = tubes.postprocess_tubes({'pred_boxes': batch['boxes'], 'pred_span': batch['span']},
                                 meta, 'hcstvg')
  assert len(rows) == len(records)
  brief = evaluation.evaluate('hcstvg', rows, [r.to_json() for r in records])['brief']
  # The predicted span runs from the first to the last sampled in-span frame, inside the GT span
  # [s, e]: tIoU = (last - first) / (e - s), and vIoU = (last - first + 1) / (e - s + 1) times the
  # box IoU, which interpolation keeps near 1 (linear motion, integer-rounded GT boxes).
  ious = []
  for i, r in enumerate(records):
    kept = meta['frame_ids'][i][batch['in_span'][i]]
    s, e = r.eval_span()
    ious.append(((kept[-1] - kept[0]) / (e - s), (kept[-1] - kept[0] + 1) / (e - s + 1)))
  t_iou, v_iou_bound = 100 * np.mean(ious, axis=0)
  assert brief['m_tIoU'] == pytest.approx(t_iou) and t_iou > 85
  assert 0.95 * v_iou_bound < brief['m_vIoU'] <= v_iou_bound


def test_crop_deterministic_and_keeps_the_span(prepared):
  records, reader = prepared
  record = records[0]
  a, b = (_examples([record], reader, max_frames=96, crop_prob=1.0,
                    rng=np.random.default_rng([3, 1, 0]))[0] for _ in range(2))
  full = _examples([record], reader, max_frames=96)[0]
  np.testing.assert_array_equal(a['frame_ids'], b['frame_ids'])
  assert len(a['frame_ids']) < len(full['frame_ids'])
  assert a['in_span'].sum() == full['in_span'].sum()   # the crop never cuts into the span


def test_padding_invariance(prepared):
  records, reader = prepared
  examples = _examples(records[:2], reader, max_frames=16)
  small, _ = tube_examples.collate_tubes(examples, frame_buckets=(16,), height=48, width=64)
  large, _ = tube_examples.collate_tubes(examples + [None], frame_buckets=(32,), height=60,
                                         width=80)
  for key in ('boxes', 'box_mask', 'in_span', 'frame_mask'):
    np.testing.assert_array_equal(large[key][:2, :16], small[key])
    assert not large[key][:, 16:].any()
  np.testing.assert_array_equal(large['frames'][:2, :16, :48, :64], small['frames'])
  with pytest.raises(ValueError, match='exceed the largest frame bucket'):
    tube_examples.collate_tubes(_examples(records[:1], reader, max_frames=40),
                                frame_buckets=(16,), height=48, width=64)


def test_tube_data_adapter(prepared):
  """The DataAdapter: picklable, examples a function of (seed, epoch, index), the bucket from the
  global batch's length, records routed by dataset name."""
  import pickle
  import ml_collections
  records, reader = prepared
  config = ml_collections.ConfigDict({'data': {
      'frames_dir': reader.path, 'max_frames': 40, 'frame_buckets': (16, 48), 'height': 48,
      'width': 72, 'crop_prob': 1.0}})
  adapter = pickle.loads(pickle.dumps(tube_examples.TubeData.from_config(config, train=True,
                                                                         seed=5)))
  record = records[1]
  assert adapter.length(record) == 40
  a = adapter.example(record, epoch=2, index=7)
  again = adapter.example(record, epoch=2, index=7)
  np.testing.assert_array_equal(a['frame_ids'], again['frame_ids'])
  others = {tuple(adapter.example(record, epoch=e, index=7)['frame_ids']) for e in range(6)}
  assert len(others) > 1   # the crop changes with the epoch
  batch, meta = adapter.collate([a, None], length=40)
  assert batch['frames'].shape[:2] == (2, 48) and meta['qid'][0] == record.qid
  read = stvg_readers.read_stvg_split('synthetic_tubes', os.path.dirname(reader.path), 'val')
  assert [r.qid for r in read.records] == [r.qid for r in records]
