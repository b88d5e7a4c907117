"""jaxvg.Predictor and `--mode predict --video --query` with an SDST checkpoint.

The shared frozen-CLIP video predictor (`jaxvg.predictor.ClipVideoPredictor`) with SDST's model
and post-processing: its rows must equal the trainer's evaluation path on the same frames, and
the CLI must write the JSON and the plot.
"""
import json

import numpy as np
import pytest

import predictor_helpers as helpers


def test_matches_the_training_evaluation_path(sdst_workdir, cache_dir):
  """Rows equal the trainer's val-split predictions from the same checkpoint: same CLIP, token
  pooling, padding and decoding of the M spans."""
  import jax
  import jaxvg
  from jaxvg import data as data_lib
  from jaxvg.data import frames as frames_lib
  from jaxvg.data import synthetic
  from jaxvg.train import trainer
  predictor = jaxvg.Predictor.from_workdir(str(sdst_workdir))
  config = predictor.config
  assert config.task == 'sdst'
  run = trainer.build_run(config, jax.devices()[:1])
  params = trainer.restore_params(run, str(sdst_workdir), 'latest')
  loader = data_lib.make_loader(config, 'val', train=False)
  expected = trainer.predict_rows(run, params, loader)
  records = {r.qid: r for r in loader.records}
  reader = frames_lib.FrameReader(synthetic.paths_for(config).frames_dir)
  queries = []
  for want in expected[:3]:
    record = records[want['qid']]
    queries.append(record.query)
    video = predictor.encode_frames(reader.read(want['vid']), want['vid'], record.duration)
    got = predictor.predict(record.query, video)
    np.testing.assert_allclose(got['pred_saliency_scores'], want['pred_saliency_scores'],
                               atol=1e-5)
    np.testing.assert_allclose(got['pred_relevant_windows'], want['pred_relevant_windows'],
                               atol=1e-4)
  # Several queries in one call equal one at a time.
  batch = predictor.predict(queries, video)
  single = predictor.predict(queries[0], video)
  np.testing.assert_allclose(batch[0]['pred_relevant_windows'],
                             single['pred_relevant_windows'], atol=1e-5)


def test_cli_writes_json_and_plot(sdst_workdir, event_video, capsys):
  from jaxvg import main as main_lib
  queries = [helpers.EVENT_QUERY, 'the blue square grows']
  main_lib.run('predict', str(helpers.REPO / 'configs/sdst/synthetic.py') + ':tiny', [],
               str(sdst_workdir), 'latest', None, str(event_video), queries)
  out = capsys.readouterr().out
  assert "query 0: 'a red circle appears'" in out and '1.' in out
  rows = json.loads((sdst_workdir / 'predictions' / 'event.json').read_text())
  assert [r['query'] for r in rows] == queries
  for row in rows:
    assert len(row['pred_saliency_scores']) == helpers.NUM_CLIPS
    windows = np.asarray(row['pred_relevant_windows'])
    assert windows.shape[1] == 3 and np.all(np.diff(windows[:, 2]) <= 0)
    assert np.all(windows[:, 0] >= 0) and np.all(windows[:, 1] <= row['duration'] + 1e-6)
  assert (sdst_workdir / 'predictions' / 'event.png').stat().st_size > 10_000


def test_internvideo2_config_is_a_clear_error():
  """The released-feature configs cannot encode a user's video (no InternVideo2 in jaxvg)."""
  from jaxvg import registry
  from jaxvg.errors import UserError
  from jaxvg.train import trainer
  from jaxvg_testing import load_config
  import jax
  run = trainer.build_run(load_config('sdst/qvhighlights.py'), jax.devices()[:1])
  with pytest.raises(UserError, match='internvideo2 features; predicting on a video needs'):
    registry.get_task('sdst').video_predictor(run, None)


def test_a_run_older_than_a_config_field_still_loads(sdst_workdir, event_video, tmp_path):
  """`from_workdir` on a run whose config.json predates a field (here `pool_scale_init`, which
  the checkpoint's parameters make moot) predicts as the run itself."""
  import shutil
  import jaxvg
  old = tmp_path / 'old_run'
  shutil.copytree(sdst_workdir, old)
  saved = json.loads((old / 'config.json').read_text())
  del saved['model']['pool_scale_init']
  (old / 'config.json').write_text(json.dumps(saved))
  rows = []
  for workdir in (sdst_workdir, old):
    predictor = jaxvg.Predictor.from_workdir(str(workdir))
    rows.append(predictor.predict(helpers.EVENT_QUERY, predictor.encode_video(str(event_video))))
  np.testing.assert_allclose(rows[1]['pred_relevant_windows'], rows[0]['pred_relevant_windows'])
