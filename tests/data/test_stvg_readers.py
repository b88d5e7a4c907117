"""STVG readers on small files in the real layouts: HC-STVG v1/v2, VidSTG + VidOR trajectories,
LLaVA_Next_STVG proposals; conventions (1-based st_frame, half-open temporal_gt, negative sizes),
bad entries raised or skipped and counted; the real VidSTG sentence files when provided."""
import json
import os

import numpy as np
import pytest

from jaxvg import evaluation
from jaxvg.data import stvg_readers
from jaxvg.data.records import AnnotationError

V1 = {
    '55_vfjywN5CN0Y.mp4': {
        'bbox': [[10, 20, 30, 40], [12, 20, 30, 40], [14, 20, 30, 40]],
        'st_frame': 5, 'st_time': 0.2, 'ed_time': 0.3, 'img_num': 500,
        'caption': 'The man in the hat walks to the door.', 'width': 480, 'height': 360},
    '27_woC9Vfbn74I.mkv': {
        'bbox': [[470, 350, 30, 40]], 'st_frame': 1, 'st_time': 0.0, 'ed_time': 0.04,
        'img_num': 600, 'caption': 'A woman sits down.', 'width': 480, 'height': 360},
}
V2 = {
    '3_abc.mp4': {'bbox': [[100, 50, -40, -20], [100, 50, 40, 20]], 'st_frame': 480,
                  'st_time': 19.1, 'ed_time': 20.0, 'img_num': 481, 'img_size': [358, 640, 3],
                  'English': 'The boy turns around.', 'Chinese': '...'},
}


def _write(path, data):
  with open(path, 'w') as f:
    json.dump(data, f)
  return str(path)


def test_hcstvg_v1_one_based_start_and_clipped_boxes(tmp_path):
  result = stvg_readers.read_hcstvg(_write(tmp_path / 'test.json', V1))
  first, second = result.records
  assert first.qid == '55_vfjywN5CN0Y.mp4' and first.video_key == '55_vfjywN5CN0Y'
  assert first.span.tolist() == [4, 7] and first.box_frames.tolist() == [4, 5, 6]
  assert first.fps == 25.0 and (first.width, first.height) == (480, 360)
  np.testing.assert_array_equal(first.boxes[1], [12, 20, 42, 60])
  np.testing.assert_array_equal(second.boxes[0], [470, 350, 480, 360])  # clipped to the frame
  row = first.to_json()
  assert row['span'] == [4, 6] and row['frame_ids'] == [4, 5, 6]  # inclusive for HC-STVG
  llava = stvg_readers.read_hcstvg(str(tmp_path / 'test.json'), one_based_st_frame=False)
  assert llava.records[0].span.tolist() == [5, 8]


def test_hcstvg_v2_negative_sizes_sorted(tmp_path):
  (record,) = stvg_readers.read_hcstvg(_write(tmp_path / 'val_v2.json', V2)).records
  assert (record.width, record.height, record.query) == (640, 358, 'The boy turns around.')
  np.testing.assert_array_equal(record.boxes, [[60, 30, 100, 50], [100, 50, 140, 70]])
  assert record.span.tolist() == [479, 481] and record.num_frames == 481


@pytest.mark.parametrize('field,value,message', [
    ('st_frame', 0, "field 'st_frame'"),
    ('bbox', [[1, 2, 3]], "field 'bbox'"),
    ('st_frame', 601, "past 'img_num'"),
    ('caption', '', "field 'caption'"),
])
def test_hcstvg_bad_entries_named_and_skippable(tmp_path, field, value, message):
  data = json.loads(json.dumps(V1))
  data['27_woC9Vfbn74I.mkv'][field] = value
  path = _write(tmp_path / 'bad.json', data)
  with pytest.raises(AnnotationError, match=f'bad.json:27_woC9Vfbn74I.mkv: .*{message}'):
    stvg_readers.read_hcstvg(path)
  result = stvg_readers.read_hcstvg(path, skip_bad=True)
  assert len(result.records) == 1 and result.num_skipped == 1 and message in result.errors[0]


def _vidstg_entry(begin=3, end=6, vid='2401075277', frame_count=6):
  return {
      'vid': vid, 'fps': 29.97, 'frame_count': frame_count, 'width': 640, 'height': 360,
      'subject/objects': [{'tid': 0, 'category': 'adult'}, {'tid': 1, 'category': 'dog'}],
      'used_segment': {'begin_fid': 1, 'end_fid': frame_count - 1},
      'used_relation': {'subject_tid': 0, 'object_tid': 1, 'predicate': 'watch',
                        'begin_fid': begin, 'end_fid': end},
      'temporal_gt': {'begin_fid': begin, 'end_fid': end},
      'captions': [{'description': 'an adult watches a dog.', 'type': 'person', 'target_id': 0}],
      'questions': [{'description': 'who watches the dog?', 'type': 'person', 'target_id': 0},
                    {'description': 'what does the adult watch?', 'type': 'object',
                     'target_id': 1}]}


def _vidor(tmp_path, vid='2401075277', frames=6):
  """A VidOR annotation file: per frame, the boxes of the objects visible (tid 1 absent at 4)."""
  traj = []
  for f in range(frames):
    objs = [{'tid': 0, 'bbox': {'xmin': f, 'ymin': 1, 'xmax': 10 + f, 'ymax': 20},
             'generated': 0, 'tracker': 'none'}]
    if f != 4:
      objs.append({'tid': 1, 'bbox': {'xmin': 630, 'ymin': 5, 'xmax': 700, 'ymax': 30},
                   'generated': 1, 'tracker': 'x'})
    traj.append(objs)
  folder = tmp_path / 'vidor' / 'training' / '0000'
  folder.mkdir(parents=True)
  return _write(folder / f'{vid}.json', {'video_id': vid, 'frame_count': frames, 'width': 640,
                                         'height': 360, 'trajectories': traj})


def test_vidstg_half_open_both_sentence_types(tmp_path):
  _vidor(tmp_path)
  path = _write(tmp_path / 'test_annotations.json', [_vidstg_entry()])
  result = stvg_readers.read_vidstg(path, vidor_dir=str(tmp_path / 'vidor'))
  decl, inter_person, inter_object = result.records
  assert [r.sentence_type for r in result.records] == ['declarative', 'interrogative',
                                                       'interrogative']
  # temporal_gt.end_fid = frame_count is exclusive: frames 3, 4, 5.
  assert decl.span.tolist() == [3, 6] and decl.box_frames.tolist() == [3, 4, 5]
  assert decl.segment.tolist() == [1, 6] and decl.to_json()['span'] == [3, 6]
  np.testing.assert_array_equal(decl.boxes[0], [3, 1, 13, 20])
  assert inter_object.target_id == 1 and inter_object.box_frames.tolist() == [3, 5]
  np.testing.assert_array_equal(inter_object.boxes[0], [630, 5, 640, 30])  # clipped
  assert len({r.qid for r in result.records}) == 3
  only = stvg_readers.read_vidstg(path, sentence_types=('declarative',))
  assert len(only.records) == 1 and only.records[0].box_frames.size == 0
  # CG-STVG's reading: end_fid inclusive, clipped to the used segment [1, 5].
  cg = stvg_readers.read_vidstg(_write(tmp_path / 'cg.json', [_vidstg_entry(3, 4)]),
                                vidor_dir=str(tmp_path / 'vidor'), cgstvg_inclusive_end=True)
  assert cg.records[0].span.tolist() == [3, 5] and cg.records[0].box_frames.tolist() == [3, 4]
  cg = stvg_readers.read_vidstg(path, cgstvg_inclusive_end=True)
  assert cg.records[0].span.tolist() == [3, 6]   # end_fid = frame_count: clipped back


def test_vidstg_bad_entries(tmp_path):
  _vidor(tmp_path)
  bad = _vidstg_entry(begin=4, end=7)            # end past frame_count
  missing = _vidstg_entry(vid='999')             # no trajectory file
  path = _write(tmp_path / 'val_annotations.json', [_vidstg_entry(), bad, missing])
  with pytest.raises(AnnotationError, match=r"val_annotations.json:1: field 'temporal_gt'"):
    stvg_readers.read_vidstg(path, vidor_dir=str(tmp_path / 'vidor'))
  result = stvg_readers.read_vidstg(path, vidor_dir=str(tmp_path / 'vidor'), skip_bad=True)
  assert len(result.records) == 3 and result.num_skipped == 2
  assert "val_annotations.json:2: field 'vid'" in result.errors[1]


def test_proposals_positional_tracks(tmp_path):
  frames = ['00000.jpg', '00010.jpg', '00020.jpg']
  tracks = [{'track_id': t, 'bboxes': [[[t, 0, t + 5, 5]] for _ in frames],
             'rles': [{'size': [4, 4], 'counts': 'x'} for _ in frames], 'class_name': 'person',
             'box_format': 'xyxy', 'img_width': 640, 'img_height': 360} for t in (7, 9)]
  (tmp_path / 'dino_sam2_proposals').mkdir()
  path = _write(stvg_readers.proposals_path(str(tmp_path), '3_abc.mp4'),
                {'sample_frames': frames, 'dino_sam2_proposals': tracks})
  tubes = stvg_readers.read_proposals(path)
  assert tubes.video_key == '3_abc' and tubes.frame_ids.tolist() == [0, 10, 20]
  assert tubes.boxes.shape == (2, 3, 4) and tubes.track_ids == (7, 9)
  np.testing.assert_array_equal(tubes.boxes[1, 2], [9, 0, 14, 5])
  tracks[0]['bboxes'] = tracks[0]['bboxes'][:2]
  _write(path, {'sample_frames': frames, 'dino_sam2_proposals': tracks})
  with pytest.raises(AnnotationError, match=r'dino_sam2_proposals\[0\]: field bboxes has 2'):
    stvg_readers.read_proposals(path)


def test_real_vidstg_sentence_files():
  """The public VidSTG val/test sentence files (Guaranteer/VidSTG-Dataset `annotations/`), from
  $JAXVG_VIDSTG_DIR: every entry parses; counts and the exclusive end as measured."""
  directory = os.environ.get('JAXVG_VIDSTG_DIR', '')
  if not os.path.exists(os.path.join(directory, 'val_annotations.json')):
    pytest.skip('set JAXVG_VIDSTG_DIR to a folder with the VidSTG val/test_annotations.json')
  for split, entries, decl, inter in (('val', 3996, 3996, 4960), ('test', 4610, 4610, 5693)):
    path = os.path.join(directory, f'{split}_annotations.json')
    result = stvg_readers.read_vidstg(path)
    types = [r.sentence_type for r in result.records]
    assert result.num_skipped == 0
    assert len({r.source.split(':')[1] for r in result.records}) == entries
    assert (types.count('declarative'), types.count('interrogative')) == (decl, inter)
    at_end = [r for r in result.records if r.span[1] == r.num_frames]
    assert at_end and all(r.segment[1] == r.num_frames for r in at_end)
    rows = [r.to_json() for r in result.records[:50]]
    for row in rows:  # Temporal-only ground truth scores a perfect span as tIoU 1.
      row['frame_ids'], row['boxes'] = [], []
    brief = evaluation.evaluate('vidstg', rows, rows)['brief']
    assert brief['m_tIoU'] == 100.0
