"""Readers: the real annotation files in shared/, malformed lines, the R²-Tuning json layouts."""
import json

import numpy as np
import pytest

from jaxvg.data import readers
from jaxvg.data.records import AnnotationError
from jaxvg.data.splits import TVSUM_SPLITS, YOUTUBE_SPLITS

# (dataset, folder, split, published count: QVH 7218/1550/1542 queries).
REAL = [
    ('qvhighlights', 'qvhighlights', 'train', 7218),
    ('qvhighlights', 'qvhighlights', 'val', 1550),
    ('qvhighlights', 'qvhighlights', 'test', 1542),
    ('charades_sta', 'charades_sta', 'train', 12404),
    ('charades_sta', 'charades_sta', 'test', 3720),
    ('tacos', 'tacos', 'train', None),
    ('tacos', 'tacos', 'val', None),
    ('tacos', 'tacos', 'test', None),
    ('tvsum', 'tvsum', 'train', 40),
    ('tvsum', 'tvsum', 'val', 10),
    ('youtube_highlights', 'youtube_highlights', 'train', None),
    ('youtube_highlights', 'youtube_highlights', 'val', None),
]


@pytest.mark.parametrize('name,folder,split,count', REAL)
def test_real_files_every_line_parses(shared, name, folder, split, count):
  anno_dir = shared / 'data' / folder
  path = readers.annotation_path(readers.get_spec(name), str(anno_dir), split)
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  result = readers.read_split(name, str(anno_dir), split)
  assert result.num_skipped == 0
  assert len(result.records) == len(rows)
  if count is not None:
    assert len(rows) == count
  for row, record in zip(rows, result.records):
    assert record.qid == row['qid'] and record.vid == row['vid']
    gt = record.to_json()
    assert gt['relevant_windows'] == (row.get('relevant_windows') or [])
    if row.get('saliency_scores') is not None:
      assert gt['saliency_scores'] == row['saliency_scores']
      assert gt['relevant_clip_ids'] == row['relevant_clip_ids']
    if name != 'tvsum':
      assert gt['duration'] == row['duration']


def test_qvh_test_split_has_no_targets(shared):
  records = readers.read_split('qvhighlights', str(shared / 'data' / 'qvhighlights'), 'test').records
  assert all(r.saliency_rule == 'none' and r.relevant_windows.shape == (0, 2) for r in records)


def test_tvsum_and_youtube_files_follow_the_official_splits(shared):
  for name, folder, splits in (('tvsum', 'tvsum', TVSUM_SPLITS),
                               ('youtube_highlights', 'youtube_highlights', YOUTUBE_SPLITS)):
    for split in ('train', 'val'):
      records = readers.read_split(name, str(shared / 'data' / folder), split).records
      for record in records:
        assert record.vid in splits[record.domain][split], (name, split, record.vid)
  yt = readers.read_split('youtube_highlights', str(shared / 'data' / 'youtube_highlights'), 'val',
                          domain='dog').records
  assert {r.domain for r in yt} == {'dog'} and yt
  r = yt[0]
  # Per-video fps: one clip per annotated segment.
  assert r.fps == pytest.approx(r.labels.shape[0] / r.duration)
  tv = readers.read_split('tvsum', str(shared / 'data' / 'tvsum'), 'val').records
  assert all(t.labels.shape[1] == 20 and t.duration == t.labels.shape[0] / 0.5 for t in tv)


def test_tacos_video_key_has_camera_suffix(shared):
  record = readers.read_split('tacos', str(shared / 'data' / 'tacos'), 'test').records[0]
  assert record.video_key == record.vid + '-cam-002'


def _write(tmp_path, lines, name='highlight_val_release.jsonl'):
  path = tmp_path / name
  path.write_text('\n'.join(lines) + '\n')
  return path


GOOD = json.dumps({'qid': 1, 'query': 'a', 'duration': 10, 'vid': 'v',
                   'relevant_windows': [[0, 2]], 'relevant_clip_ids': [0],
                   'saliency_scores': [[1, 2, 3]]})


@pytest.mark.parametrize('bad,field', [
    ('{"qid": 2, "query": "a", "duration": 10, "relevant_windows": [[0, 2]]}', "'vid'"),
    ('{"qid": 2, "query": "a", "vid": "v", "duration": "x"}', "'duration'"),
    ('{"qid": 2, "query": "a", "vid": "v", "duration": 10, "relevant_windows": [[0]]}',
     "'relevant_windows'"),
    ('{"qid": 2, "query": "a", "vid": "v", "duration": 10, "relevant_windows": [[0, 2]], '
     '"relevant_clip_ids": [0, 1], "saliency_scores": [[1, 2, 3]]}', "'relevant_clip_ids'"),
    ('{"qid": 2, "query": "a", "vid": "v"', 'invalid JSON'),
])
def test_malformed_line_names_file_line_and_field(tmp_path, bad, field):
  path = _write(tmp_path, [GOOD, bad, GOOD])
  with pytest.raises(AnnotationError) as e:
    readers.read_split('qvhighlights', str(tmp_path), 'val')
  assert f'{path}:2:' in str(e.value) and field in str(e.value)
  result = readers.read_split('qvhighlights', str(tmp_path), 'val', skip_bad=True)
  assert len(result.records) == 2 and result.num_skipped == 1
  assert f'{path}:2' in result.errors[0]


def test_min_video_len_filters(tmp_path):
  short = json.dumps({'qid': 2, 'query': 'a', 'duration': 4, 'vid': 'w',
                      'relevant_windows': [[0, 2]]})
  _write(tmp_path, [GOOD, short], 'charades_train_release.jsonl')
  records = readers.read_split('charades_sta', str(tmp_path), 'train', min_video_len=5).records
  assert [r.qid for r in records] == [1]


def test_r2tuning_json_layouts(tmp_path):
  anno = {vid: {'title': f'title {vid}', 'anno': np.full((6, 20), 2.0).tolist()}
          for vid in ('Se3oxnaPsz0', 'WxtbjNsCQ8A', 'not_in_split')}
  (tmp_path / 'tvsum_anno.json').write_text(json.dumps(anno))
  val = readers.read_split('tvsum', str(tmp_path), 'val', domain='BK').records
  assert [r.vid for r in val] == ['Se3oxnaPsz0'] and val[0].query == 'title Se3oxnaPsz0'
  assert val[0].labels.shape == (6, 20) and val[0].feature_key == 'Se3oxnaPsz0'
  train = readers.read_split('tvsum', str(tmp_path), 'train').records
  assert [r.vid for r in train] == ['WxtbjNsCQ8A'] and train[0].domain == 'BK'

  yt = {'a2nj7XCo2Rk': {'match': [-1, 0, 1, 1], 'info': [0, 0, 0, 0, 0, 'dog'],
                        'frames': 240, 'fps': 30.0}}
  (tmp_path / 'youtube_anno.json').write_text(json.dumps(yt))
  (r,) = readers.read_split('youtube_highlights', str(tmp_path), 'val', domain='dog').records
  assert r.query == 'dog' and r.duration == 8.0 and r.fps == 0.5
  np.testing.assert_array_equal(r.labels[:, 0], [-1, 0, 1, 1])


def test_to_json_round_trips_the_qvh_schema(tmp_path):
  _write(tmp_path, [GOOD])
  (record,) = readers.read_split('qvhighlights', str(tmp_path), 'val').records
  assert record.to_json() == json.loads(GOOD)
