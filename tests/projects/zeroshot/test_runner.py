"""The zero-shot runner: COCO RLE masks as pycocotools writes them, and `--mode predict` end to end
on the synthetic tube benchmark with the tiny random OneVision backend (mechanics, not accuracy)."""
import json
import pathlib

import jax
import numpy as np
import pytest

from jaxvg import configs, registry
from jaxvg.data import synthetic_tubes
from jaxvg.errors import UserError
from jaxvg.projects.zeroshot import runner

ROOT = pathlib.Path(__file__).resolve().parents[3]
RLES = ROOT / 'tests' / 'fixtures' / 'zeroshot_rles.npz'


def test_compressed_rle_decodes_as_pycocotools_encoded():
  ref = np.load(RLES)
  for mask, counts in zip(ref['masks'], ref['counts']):
    decoded = runner.rle_decode({'size': ref['size'].tolist(), 'counts': str(counts)})
    np.testing.assert_array_equal(decoded, mask)


def test_uncompressed_rle_of_the_synthetic_proposals():
  box = np.array([10.0, 20.0, 30.0, 50.0])
  mask = runner.rle_decode(synthetic_tubes._box_rle(box))
  expected = np.zeros((synthetic_tubes.HEIGHT, synthetic_tubes.WIDTH), bool)
  expected[20:50, 10:30] = True
  np.testing.assert_array_equal(mask, expected)


def test_predict_on_synthetic_tubes_writes_scored_rows(tmp_path):
  pytest.importorskip('tokenizers', reason='pinned in requirements.txt (pip install -r ...)')
  config = configs.load(str(ROOT / 'configs' / 'zeroshot' / 'synthetic.py') + ':tiny')
  metrics = runner.run(config, str(tmp_path / 'run'), 'predict')
  rows = [json.loads(line) for line in (tmp_path / 'run' / 'predictions.jsonl').open()]
  assert len(rows) == config.data.max_records
  for row in rows:
    assert row['span'][0] <= row['span'][1] and len(row['frame_ids']) == len(row['boxes'])
  brief = metrics['brief']
  assert all(0.0 <= brief[k] <= 100.0 for k in ('m_tIoU', 'm_vIoU', 'gt_vIoU'))
  assert json.loads((tmp_path / 'run' / 'metrics.json').read_text()) == pytest.approx(brief)


def test_task_model_takes_the_dummy_batch_and_the_loaded_weights():
  config = configs.load(str(ROOT / 'configs' / 'zeroshot' / 'synthetic.py') + ':tiny')
  task = registry.get_task(config.task)
  model, batch = task.build_model(config), task.dummy_batch(config, 2)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), batch)['params'])
  params = task.load_weights(config.model.folder, config)
  assert jax.tree.map(np.shape, params) == jax.tree.map(lambda s: s.shape, shapes)
  assert model.apply({'params': params}, batch)['logits'].shape[:2] == (2, 1)


def test_train_mode_is_refused():
  config = configs.load(str(ROOT / 'configs' / 'zeroshot' / 'hcstvg_v2.py'))
  with pytest.raises(UserError, match='no .train. mode'):
    runner.run(config, '/tmp/unused', 'train')
