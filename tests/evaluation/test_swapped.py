"""The swapped-query baseline: every query comes from another video, nothing else changes."""
import dataclasses

import numpy as np
import pytest

from jaxvg.data.records import GroundingRecord
from jaxvg.evaluation import swapped


def _records(vids):
  return [GroundingRecord(vid=vid, qid=i, query=f'query {i}', duration=10.0, fps=0.5,
                          relevant_windows=np.array([[2.0, 4.0]]), feature_key=f'q{i}')
          for i, vid in enumerate(vids)]


@pytest.mark.parametrize('vids', [list('aabbbc'), list('ab'), list('aaaab'), list('abcabc')])
def test_donors_come_from_other_videos(vids):
  donors = swapped.donors(vids)
  assert [vids[j] for j in donors] != vids
  assert all(vids[j] != vid for vid, j in zip(vids, donors))
  assert swapped.donors(vids) == donors                  # deterministic


def test_balanced_when_no_video_dominates():
  vids = [v for v in 'abcdefgh' for _ in range(3)]       # 8 videos x 3 queries, contiguous
  donors = swapped.donors(vids)
  assert sorted(donors) == list(range(len(vids)))        # each query used exactly once


def test_one_video_cannot_be_swapped():
  with pytest.raises(ValueError, match='at least two videos'):
    swapped.donors(['a', 'a'])


def test_swap_moves_query_text_and_feature_key_only():
  records = _records(list('aabbcc'))
  out = swapped.swap_queries(records)
  donors = swapped.donors([r.vid for r in records])
  for before, after, j in zip(records, out, donors):
    assert (after.query, after.feature_key) == (records[j].query, records[j].feature_key)
    assert after.qid == before.qid and after.vid == before.vid
    np.testing.assert_array_equal(after.relevant_windows, before.relevant_windows)
    others = {f.name for f in dataclasses.fields(before)} - {'query', 'feature_key',
                                                              'relevant_windows'}
    assert all(getattr(after, f) == getattr(before, f) for f in others)
  assert [r.query for r in records] == [f'query {i}' for i in range(6)]   # inputs untouched


def test_swap_dict_rows():
  rows = [{'qid': i, 'vid': v, 'query': f'q{i}'} for i, v in enumerate('abab')]
  out = swapped.swap_queries(rows)
  assert [r['query'] for r in out] == ['q3', 'q0', 'q1', 'q2']
  assert [r['qid'] for r in out] == [0, 1, 2, 3]


def test_format_gap():
  line = swapped.format_gap({'R1': 50.0}, {'R1': 20.0}, ['R1'])
  assert line == 'R1: true queries 50.00   swapped queries 20.00   gap +30.00'
