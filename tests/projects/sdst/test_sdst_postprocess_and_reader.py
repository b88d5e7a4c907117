"""SDST post-processing to QVHighlights rows, and the InternVideo2 `.npz` reader."""
import numpy as np
import pytest

from jaxvg.data.internvideo2 import InternVideo2Features
from jaxvg.projects.sdst.postprocess import postprocess

from .conftest import tiny_config


def _outputs():
  logits = np.array([[[0.0, 0.0, 0.0], [2.0, -1.0, 0.5]],
                     [[0.0, 0.0, 0.0], [1.0, 3.0, -2.0]]], np.float32)
  actionness = np.array([[[0.0] * 3, [-3.0, 2.0, 0.0]], [[0.0] * 3, [0.0, 0.0, 0.0]]], np.float32)
  spans = np.zeros((2, 2, 3, 2), np.float32)
  spans[0, 1] = [[0.5, 0.2], [0.1, 0.3], [0.9, 0.4]]
  spans[1, 1] = [[0.25, 0.5], [0.5, 0.1], [0.5, 1.0]]
  video_mask = np.arange(6)[None] < np.array([[5], [6]])
  saliency = np.arange(12, dtype=np.float32).reshape(2, 6)
  return dict(logits=logits, actionness=actionness, spans=spans, video_mask=video_mask,
              saliency=saliency)


def _sig(x):
  return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


def test_rows_from_the_last_step():
  config = tiny_config()
  config.post.unit = 0.0
  metadata = dict(qid=[np.int64(7), 'q2'], vid=['a', 'b'], duration=np.array([10.0, 12.0]),
                  fps=np.array([0.5, 0.5]), sample_mask=np.array([True, False]))
  rows = postprocess(_outputs(), metadata, config)
  assert len(rows) == 1 and rows[0]['qid'] == 7 and isinstance(rows[0]['qid'], int)
  # 5 clips at 0.5 fps = 10 s; score σ(cls)·σ(actionness); windows clamped to [0, 10].
  scores = _sig([2.0, -1.0, 0.5]) * _sig([-3.0, 2.0, 0.0])
  windows = np.array([[4.0, 6.0], [0.0, 2.5], [7.0, 10.0]])
  order = np.argsort(-scores, kind='stable')
  want = np.concatenate([windows, scores[:, None]], 1)[order]
  np.testing.assert_allclose(rows[0]['pred_relevant_windows'], want, atol=1e-6)
  assert rows[0]['pred_saliency_scores'] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_class_score_rounding_and_nms():
  config = tiny_config()
  config.post.score, config.post.unit = 'cls', 2.0
  config.post.nms_type, config.post.nms_threshold = 'normal', 0.3
  metadata = dict(qid=[1, 2], vid=['a', 'b'], duration=np.array([10.0, 12.0]),
                  fps=np.array([0.5, 0.5]))
  row = postprocess(_outputs(), metadata, config)[1]
  # 6 clips = 12 s: [0, 6] -> [0, 6]; [5.4, 6.6] -> [6, 6] (rounded); [0, 12] ends at the video's
  # end (not rounded). NMS zeroes windows overlapping a better one by IoU ≥ 0.3.
  got = np.asarray(row['pred_relevant_windows'])
  np.testing.assert_allclose(got[:, :2], [[6.0, 6.0], [0.0, 6.0], [0.0, 12.0]], atol=1e-6)
  np.testing.assert_allclose(got[:, 2], [_sig(3.0), _sig(1.0), 0.0], atol=1e-6)


def test_internvideo2_reader(tmp_path):
  rng = np.random.default_rng(0)
  (tmp_path / 'vid').mkdir()
  (tmp_path / 'txt').mkdir()
  video = rng.normal(size=(75, 5, 768)).astype(np.float16)
  text = rng.normal(size=(5, 17, 1024)).astype(np.float32)
  np.savez(tmp_path / 'vid' / 'v1.npz', visual_feats_interm_pooled=video)
  np.savez_compressed(tmp_path / 'txt' / '42.npz', text_feats=text)
  np.savez(tmp_path / 'vid' / 'old.npz', visual_feats_pooled=video[:, -1])
  np.savez(tmp_path / 'vid' / 'bad.npz', something=video)

  reader = InternVideo2Features(str(tmp_path / 'vid'), str(tmp_path / 'txt'), num_layers=3,
                                video_dims=768, query_dims=1024, normalize=False)
  v, q = reader.video('v1'), reader.query('42')
  assert v.shape == (75, 3, 768) and q.shape == (17, 3, 1024) and v.dtype == np.float32
  np.testing.assert_array_equal(v, video[:, 2:].astype(np.float32))   # the last 3 layers
  np.testing.assert_array_equal(q, np.swapaxes(text[2:], 0, 1))
  assert reader.num_clips('v1') == 75

  normed = InternVideo2Features(str(tmp_path / 'vid'), str(tmp_path / 'txt'), num_layers=1,
                                video_dims=768, query_dims=1024)
  old = normed.video('old')
  assert old.shape == (75, 1, 768)
  np.testing.assert_allclose(np.linalg.norm(old, axis=-1), 1.0, rtol=1e-5)

  with pytest.raises(ValueError, match=r"bad\.npz.*visual_feats_interm_pooled"):
    reader.video('bad')
  with pytest.raises(FileNotFoundError, match='missing.npz'):
    reader.query('missing')
  with pytest.raises(ValueError, match='fewer than model.num_layers=3'):
    reader.video('old')
  wrong = InternVideo2Features(str(tmp_path / 'vid'), str(tmp_path / 'txt'), num_layers=3,
                               video_dims=512, query_dims=1024)
  with pytest.raises(ValueError, match=r'\(T, K, 512\)'):
    wrong.video('v1')
