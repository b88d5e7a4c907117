"""The 'sdst' task through the engine's contract: registry, configs, and the shared data layer
reading the released InternVideo2 `.npz` layout into the batch the model takes."""
import jax
import numpy as np

from jaxvg import registry
from jaxvg.data.records import GroundingRecord
from jaxvg.projects.sdst import model as sdst_model

from jaxvg_testing import load_config

from .conftest import tiny_config


def test_task_and_configs():
  task = registry.get_task('sdst')
  assert task.name == 'sdst' and task.training is not None
  for name in ('qvhighlights.py', 'charades_sta.py', 'tacos.py', 'synthetic.py',
               'synthetic.py:tiny'):
    config = load_config(f'sdst/{name}')
    assert config.task == 'sdst'
  # QVHighlights lands near the paper's 4.1 M trainable parameters.
  config = load_config('sdst/qvhighlights.py')
  shapes = jax.eval_shape(lambda: task.build_model(config).init(
      jax.random.key(0), task.dummy_batch(config, 1)))
  assert sum(x.size for x in jax.tree.leaves(shapes['params'])) == 4_149_920


def test_internvideo2_features_through_the_data_layer(tmp_path):
  config = tiny_config()
  m = config.model
  config.data.feature_dir = str(tmp_path)
  config.data.t_buckets, config.data.l_buckets, config.data.max_windows = (8, 16), (4, 8), 3
  rng = np.random.default_rng(0)
  (tmp_path / 'internvideo2_vid').mkdir()
  (tmp_path / 'internvideo2_txt').mkdir()
  lengths = {'v1': 10, 'v2': 6}
  for vid, t in lengths.items():
    np.savez(tmp_path / 'internvideo2_vid' / f'{vid}.npz',
             visual_feats_interm_pooled=rng.normal(size=(t, 5, m.video_dims)).astype(np.float16))
  for qid, l in ((1, 5), (2, 3)):
    np.savez(tmp_path / 'internvideo2_txt' / f'{qid}.npz',
             text_feats=rng.normal(size=(5, l, m.query_dims)).astype(np.float32))
  records = [GroundingRecord(vid=vid, qid=qid, query='q', duration=2.0 * lengths[vid], fps=0.5,
                             relevant_windows=np.array([[2.0, 6.0]]), saliency_rule='binary',
                             feature_key=str(qid), video_key=vid)
             for vid, qid in (('v1', 1), ('v2', 2))]
  data = registry.get_task('sdst').make_data(config, train=True, seed=0, process_count=1)
  examples = [data.example(r, epoch=0, index=i) for i, r in enumerate(records)] + [None]
  batch, meta = data.collate(examples, max(data.length(r) for r in records))
  assert batch['video'].shape == (3, 16, m.num_layers, m.video_dims)
  assert batch['query'].shape == (3, 8, m.num_layers, m.query_dims)
  np.testing.assert_array_equal(batch['video_mask'].sum(1), [10, 6, 0])
  np.testing.assert_array_equal(batch['query_mask'].sum(1), [5, 3, 0])
  # L2-normalised rows of the last K layers; windows in clip units.
  np.testing.assert_allclose(np.linalg.norm(batch['video'][0, :10].astype(np.float32), axis=-1),
                             1.0, rtol=2e-3)
  np.testing.assert_allclose(batch['windows'][0, 0], [1.0, 3.0])
  outputs = jax.jit(sdst_model.SDST(m).apply)(
      sdst_model.SDST(m).init(jax.random.key(0), batch), batch)
  rows = registry.get_task('sdst').postprocess(jax.device_get(outputs),
                                               dict(meta, sample_mask=batch['sample_mask']),
                                               config)
  assert [r['qid'] for r in rows] == [1, 2]
  assert len(rows[1]['pred_saliency_scores']) == 6
  assert all(0 <= w[0] <= w[1] <= 12.0 for w in rows[1]['pred_relevant_windows'])
