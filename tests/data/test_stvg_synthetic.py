"""The synthetic tube benchmark: deterministic, readable by the real readers, needing the query:
a query-blind 'largest shape' reference scores far below an oracle that reads the query."""
import filecmp
import json
import os

import numpy as np
import pytest

from jaxvg.data import stvg_readers
from jaxvg.data import synthetic_tubes


@pytest.fixture(scope='module')
def tubes_root(tmp_path_factory):
  return synthetic_tubes.ensure_synthetic_tubes(str(tmp_path_factory.mktemp('tubes')), 'tiny')


def _split(paths, split):
  records = stvg_readers.read_hcstvg(getattr(paths, f'{split}_file')).records
  candidates = {r.video_key: stvg_readers.read_proposals(
      stvg_readers.proposals_path(paths.root, r.vid)) for r in records}
  return records, candidates


def test_deterministic(tubes_root, tmp_path):
  again = synthetic_tubes.ensure_synthetic_tubes(str(tmp_path), 'tiny')
  assert filecmp.cmp(tubes_root.train_file, again.train_file, shallow=False)
  stem = sorted(os.listdir(again.proposals_dir))[3]
  assert filecmp.cmp(os.path.join(tubes_root.proposals_dir, stem),
                     os.path.join(again.proposals_dir, stem), shallow=False)


def test_schema_and_distractors(tubes_root):
  records, candidates = _split(tubes_root, 'train')
  assert len(records) == synthetic_tubes.SIZES['tiny'][0]
  shared = 0
  for record in records:
    tubes = candidates[record.video_key]
    assert record.num_frames == synthetic_tubes.NUM_FRAMES and record.fps == synthetic_tubes.FPS
    assert 3 <= len(tubes.track_ids) <= 4 and tubes.boxes.shape[1] == len(tubes.frame_ids)
    colour, shape = record.query.split()[1:3]
    # In most videos a distractor shares the colour or the shape of the target.
    shared += sum(c.split()[0] == colour or c.split()[1] == shape
                  for c in tubes.class_names) > 1
    # The GT boxes sit on the matching track's (unjittered) boxes at proposal frames.
    on = np.isin(tubes.frame_ids, record.box_frames)
    gt = record.boxes[np.searchsorted(record.box_frames, tubes.frame_ids[on])]
    error = np.abs(tubes.boxes[:, on] - gt).max(axis=(1, 2))
    assert error.min() < 8 * synthetic_tubes.PROPOSAL_JITTER
  assert shared >= len(records) // 2


def test_query_blind_baseline_below_oracle(tubes_root):
  records = _split(tubes_root, 'train')[0] + _split(tubes_root, 'val')[0]
  scores = synthetic_tubes.reference_scores(records, tubes_root.root)
  print(json.dumps(scores))
  blind, oracle = (scores[synthetic_tubes.REFERENCES[k]] for k in ('largest', 'oracle'))
  assert oracle['m_vIoU'] > 65 and oracle['m_tIoU'] > 80
  assert blind['m_vIoU'] < oracle['m_vIoU'] - 25
