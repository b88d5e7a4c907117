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


def _synthetic_config(reader, **data):
  from configs.cgstvg import synthetic
  config = synthetic.get_config('tiny')
  config.data.synthetic_root = os.path.dirname(os.path.dirname(reader.path))
  config.data.update({'resolution': 48, 'max_size': 72, 'height': 48, 'width': 72,
                      'sample_fps': 3.2, 'max_frames': 40, 'frame_buckets': (48,), **data})
  return config


def test_tube_data_tokens_and_flip(prepared):
  """With a tokenizer the examples carry the query's RoBERTa ids (padded with <pad>); the
  training flip mirrors frames and boxes and swaps left/right in the text it tokenises."""
  records, reader = prepared
  config = _synthetic_config(reader, crop_prob=0.0, flip_prob=1.0)
  plain = tube_examples.TubeData.from_config(config, train=False, seed=0)
  flipped = tube_examples.TubeData.from_config(config, train=True, seed=0)
  assert plain.frames.path == reader.path          # the prepared frames, found from the config
  record = next(r for r in records if r.query.endswith(('left', 'right')))
  a = plain.example(record, epoch=0, index=0)
  b = flipped.example(record, epoch=0, index=0)
  tokenizer = plain.tokenizer
  np.testing.assert_array_equal(a['tokens'], tokenizer.encode(record.query))
  swapped = tube_examples.swap_left_right(record.query)
  assert swapped != record.query and b['query'] == swapped
  np.testing.assert_array_equal(b['tokens'], tokenizer.encode(swapped))
  np.testing.assert_array_equal(b['frames'], a['frames'][:, :, ::-1])
  np.testing.assert_allclose(b['boxes'][:, 0], 1 - a['boxes'][:, 0], atol=1e-6)
  np.testing.assert_array_equal(b['boxes'][:, 1:], a['boxes'][:, 1:])
  batch, _ = plain.collate([a, None], length=40)
  n = len(a['tokens'])
  assert batch['tokens'].shape == (2, 16) and batch['text_mask'][0].sum() == n
  assert (batch['tokens'][0, n:] == tokenizer.pad_id).all() and not batch['text_mask'][1].any()
  assert tokenizer.pad_id == config.model.text.pad_token_id


def test_swap_left_right_official_and_whole_words():
  text = 'the man on the left walks right, bright Left'
  assert tube_examples.swap_left_right(text) == 'the man on the right walks left, bleft Left'
  assert tube_examples.swap_left_right(text, whole_words=True) == (
      'the man on the right walks left, bright Right')


@pytest.mark.parametrize('shape', [(420, 588), (588, 420), (360, 640)])
def test_random_resize_shape(shape):
  """DETR's get_size: the drawn short side, lowered to keep the long side within max_size."""
  rng = np.random.default_rng(0)
  for _ in range(20):
    h, w = tube_examples.random_resize_shape(*shape, (420, 388, 356, 324), 600, rng)
    assert min(h, w) in (420, 388, 356, 324) or max(h, w) <= 600
    assert max(h, w) <= 601 and abs(h / w - shape[0] / shape[1]) < 0.01


def test_augmentation_is_a_function_of_seed_epoch_index(prepared):
  records, reader = prepared
  config = _synthetic_config(reader, crop_prob=0.5, flip_prob=0.5, train_scales=(48, 40, 32),
                             train_max_size=72)
  adapter = tube_examples.TubeData.from_config(config, train=True, seed=3)
  record = records[0]
  draws = [adapter.example(record, epoch=e, index=2) for e in range(8)]
  again = adapter.example(record, epoch=5, index=2)
  np.testing.assert_array_equal(again['frames'], draws[5]['frames'])
  np.testing.assert_array_equal(again['tokens'], draws[5]['tokens'])
  assert len({d['frames'].shape[1] for d in draws}) > 1           # several scales
  assert len({float(d['boxes'][d['box_mask']][0, 0]) for d in draws}) > 1   # flipped or not
  batch, _ = adapter.collate(draws[:2], length=40)
  for i, d in enumerate(draws[:2]):
    h, w = d['frames'].shape[1:3]
    assert batch['pixel_mask'][i].sum() == h * w
