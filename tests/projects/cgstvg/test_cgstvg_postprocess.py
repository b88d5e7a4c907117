"""CG-STVG post-processing against the official PostProcess / linear_interp outputs, and the
span rule's invariants."""
import pathlib

import ml_collections
import numpy as np

from jaxvg.postprocess.tubes import linear_interp
from jaxvg.projects.cgstvg.postprocess import best_span, postprocess

FIXTURE = pathlib.Path(__file__).parents[2] / 'fixtures' / 'cgstvg_official_tiny.npz'


def config(dataset):
  return ml_collections.ConfigDict({'data': {'dataset': dataset}})


def metadata(qids, frame_ids, size):
  frame_ids = np.asarray(frame_ids)
  return {'qid': qids, 'frame_ids': frame_ids, 'frame_mask': np.ones(frame_ids.shape, bool),
          'width': np.full(len(qids), size[1]), 'height': np.full(len(qids), size[0]),
          'sample_mask': np.array([q is not None for q in qids])}


def test_matches_official_postprocess():
  f = np.load(FIXTURE)
  frames = f['eval/anchors'].shape[1]
  outputs = {'boxes': f['eval/anchors'][:, None], 'sted': f['eval/sted'][:, None]}
  outputs = {k: np.concatenate([v, v], axis=1) for k, v in outputs.items()}  # + a padding sample
  ids = np.arange(10, 10 + frames)
  (row,) = postprocess(outputs, metadata(['v', None], [ids, ids], (96, 128)), config('vidstg'))
  assert row['span'] == f['post/span'].tolist()       # official [start, end + 1)
  np.testing.assert_allclose(np.array(row['boxes']), f['post/boxes_xyxy'], atol=1e-4)
  (row,) = postprocess(outputs, metadata(['v', None], [ids, ids], (96, 128)), config('hcstvg'))
  assert row['span'] == [f['post/span'][0], f['post/span'][1] - 1]   # inclusive


def test_interpolation_matches_official():
  f = np.load(FIXTURE)
  ids, dense = linear_interp(f['post/interp_ids_in'], f['post/interp_boxes_in'])
  assert ids.tolist() == f['post/interp_ids_out'].tolist()
  np.testing.assert_allclose(dense, f['post/interp_boxes_out'], rtol=1e-5)


def test_span_is_the_best_strictly_ordered_pair():
  rng = np.random.default_rng(0)
  for _ in range(20):
    start, end = rng.standard_normal((2, 7))
    s, e = best_span(start, end)
    assert s < e
    scores = {(a, b): start[a] - np.log(np.exp(start).sum()) + end[b] - np.log(np.exp(end).sum())
              for a in range(7) for b in range(a + 1, 7)}
    assert scores[(s, e)] >= max(scores.values()) - 1e-12


def test_even_odd_halves_merge():
  boxes = np.tile(np.array([0.5, 0.5, 0.2, 0.2], np.float32), (1, 2, 3, 1))
  sted = np.zeros((1, 2, 3, 2), np.float32)
  sted[0, 0, 0, 0] = sted[0, 0, 2, 1] = 5.0      # half 0: frames 0, 2, 4 -> span 0..4
  sted[0, 1, 1, 0] = sted[0, 1, 2, 1] = 5.0      # half 1: frames 1, 3, 5 -> span 3..5
  meta = metadata([7, 7], [[0, 2, 4], [1, 3, 5]], (10, 10))
  (row,) = postprocess({'boxes': boxes, 'sted': sted}, meta, config('hcstvg'))
  assert row['span'] == [0, 5]
  assert row['frame_ids'] == list(range(6))
