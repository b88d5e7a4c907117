"""CG-STVG post-processing against the official PostProcess / linear_interp outputs, and the
span rule's invariants."""
import pathlib

import numpy as np

from jaxvg.projects.cgstvg.postprocess import best_span, interpolate_boxes, postprocess

FIXTURE = pathlib.Path(__file__).parents[2] / 'fixtures' / 'cgstvg_official_tiny.npz'


def test_matches_official_postprocess():
  f = np.load(FIXTURE)
  frames = f['eval/anchors'].shape[1]
  outputs = {'boxes': f['eval/anchors'][:, None], 'sted': f['eval/sted'][:, None]}
  meta = {'samples': [{'qid': 'v', 'frame_ids': list(range(10, 10 + frames)), 'height': 96,
                       'width': 128}, None]}
  outputs = {k: np.concatenate([v, v], axis=1) for k, v in outputs.items()}  # + a padding sample
  (row,) = postprocess(outputs, meta, None)
  assert row['span'] == f['post/span'].tolist()
  np.testing.assert_allclose(np.array(row['boxes']), f['post/boxes_xyxy'], rtol=1e-5, atol=1e-4)


def test_interpolation_matches_official():
  f = np.load(FIXTURE)
  filled = interpolate_boxes(dict(zip(f['post/interp_ids_in'].tolist(), f['post/interp_boxes_in'])))
  assert list(filled) == f['post/interp_ids_out'].tolist()
  np.testing.assert_allclose(np.stack(list(filled.values())), f['post/interp_boxes_out'],
                             rtol=1e-5)


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
  boxes = np.tile(np.array([0.5, 0.5, 0.2, 0.2], np.float32), (1, 3, 1))
  sted = np.zeros((1, 3, 2), np.float32)
  sted[0, 0, 0] = sted[0, 2, 1] = 5.0          # half 0: frames 0, 2, 4 -> span [0, 5)
  sted2 = np.zeros((1, 3, 2), np.float32)
  sted2[0, 1, 0] = sted2[0, 2, 1] = 5.0        # half 1: frames 1, 3, 5 -> span [3, 6)
  outputs = {'boxes': np.stack([boxes[0], boxes[0]])[None],
             'sted': np.stack([sted[0], sted2[0]])[None]}
  meta = {'samples': [{'qid': 7, 'frame_ids': [0, 2, 4], 'height': 10, 'width': 10},
                      {'qid': 7, 'frame_ids': [1, 3, 5], 'height': 10, 'width': 10}]}
  (row,) = postprocess(outputs, meta, None)
  assert row['span'] == [0, 6]
  assert row['frame_ids'] == list(range(6))
