"""jaxvg.Predictor and `--mode predict --video --query` on a tiny synthetic checkpoint.

The checkpoint is trained once per session (conftest); the videos are mp4 files written with
PyAV from synthetic renders, so the whole path runs: PyAV decoding at the dataset fps, the frozen
CLIP, the batched jitted grounding call, post-processing, JSON and the PNG plot.
"""
import json
import struct

import numpy as np
import pytest

import predictor_helpers as helpers


@pytest.fixture(scope='module')
def predictor(trained_workdir):
  import jaxvg
  return jaxvg.Predictor.from_workdir(str(trained_workdir))


def test_row_format_and_timing(predictor, event_video):
  video = predictor.encode_video(event_video)
  assert video.num_clips == helpers.NUM_CLIPS          # 16 s at 0.5 fps
  assert video.duration == pytest.approx(helpers.NUM_CLIPS / 0.5, abs=0.1)
  k, p = predictor.config.model.num_layers, predictor.config.model.num_tokens
  assert video.features.shape == (helpers.NUM_CLIPS, k, p, predictor.config.model.video_dims)
  row = predictor.predict(helpers.EVENT_QUERY, video)
  assert row['query'] == helpers.EVENT_QUERY and row['vid'] == 'event'
  assert len(row['pred_saliency_scores']) == helpers.NUM_CLIPS
  windows = np.asarray(row['pred_relevant_windows'])
  assert windows.shape[1] == 3 and np.all(np.diff(windows[:, 2]) <= 0)   # sorted by score
  assert np.all(windows[:, 0] >= 0) and np.all(windows[:, 1] <= video.duration)
  assert np.all(windows[:, 1] >= windows[:, 0])


def test_matches_the_training_evaluation_path(predictor, trained_workdir, cache_dir, tmp_path):
  """Rows equal the trainer's val-split predictions: same preprocessing, padding and decoding;
  through an H.264 mp4 and PyAV they stay within codec noise."""
  from jaxvg import data as data_lib
  from jaxvg.data import frames as frames_lib
  from jaxvg.data import synthetic
  from jaxvg.train import trainer
  config = predictor.config
  config.data.synthetic_root = str(cache_dir / 'synthetic')
  run = trainer.build_run(config)
  params = trainer.restore_params(run, str(trained_workdir), 'latest')
  expected = trainer.predict_rows(run, params,
                                  data_lib.make_loader(config, 'val', train=False))
  paths = synthetic.ensure_synthetic(config.data.synthetic_root, 'tiny')
  with open(paths.val_file) as f:
    records = {r['qid']: r for r in map(json.loads, f)}
  reader = frames_lib.FrameReader(paths.frames_dir)
  for want in expected[:4]:
    record = records[want['qid']]
    frames = reader.read(want['vid'])
    got = predictor.predict(record['query'],
                            predictor.encode_frames(frames, want['vid'], record['duration']))
    np.testing.assert_allclose(got['pred_saliency_scores'], want['pred_saliency_scores'],
                               atol=1e-5)
    np.testing.assert_allclose(got['pred_relevant_windows'][:10],
                               want['pred_relevant_windows'][:10], atol=1e-5)
    mp4 = helpers.write_mp4(frames, tmp_path / f'{want["vid"]}.mp4', 1 / synthetic.FPS)
    got = predictor.predict(record['query'], str(mp4))
    assert got['duration'] == pytest.approx(record['duration'], abs=0.1)
    np.testing.assert_allclose(got['pred_saliency_scores'], want['pred_saliency_scores'],
                               atol=0.01)
    assert got['pred_relevant_windows'][0][:2] == want['pred_relevant_windows'][0][:2]


def test_batch_equals_one_by_one(predictor, event_video):
  video = predictor.encode_video(event_video)
  queries = [helpers.EVENT_QUERY, 'the blue square grows', 'a green triangle moves to the left']
  batch = predictor.predict(queries, video)
  assert [r['qid'] for r in batch] == [0, 1, 2]
  for query, row in zip(queries, batch):
    single = predictor.predict(query, video)
    np.testing.assert_allclose(row['pred_saliency_scores'], single['pred_saliency_scores'],
                               atol=1e-5)
    np.testing.assert_allclose(row['pred_relevant_windows'], single['pred_relevant_windows'],
                               atol=1e-5)
  # Different queries really are different rows of the batch.
  assert not np.allclose(batch[0]['pred_saliency_scores'], batch[1]['pred_saliency_scores'])


def _png_size(path) -> tuple[int, int]:
  data = path.read_bytes()
  assert data[:8] == b'\x89PNG\r\n\x1a\n' and data[12:16] == b'IHDR'
  return struct.unpack('>II', data[16:24])


def test_cli_writes_json_and_plot(trained_workdir, event_video, capsys):
  from jaxvg import plotting, predictor as predictor_lib
  config = helpers.synthetic_config('tiny')
  queries = [helpers.EVENT_QUERY, 'the blue square grows']
  predictor_lib.main(config, str(trained_workdir), str(event_video), queries)
  out = capsys.readouterr().out
  assert "query 0: 'a red circle appears'" in out and '1.' in out
  rows = json.loads((trained_workdir / 'predictions' / 'event.json').read_text())
  assert [r['query'] for r in rows] == queries
  png = trained_workdir / 'predictions' / 'event.png'
  assert _png_size(png) == (plotting.WIDTH_PX, plotting.ROW_HEIGHT_PX * len(queries))
  import matplotlib.image
  pixels = matplotlib.image.imread(png)
  assert pixels.std() > 0.05                        # not a blank canvas


@pytest.fixture(scope='module')
def bad_videos(tmp_path_factory):
  root = tmp_path_factory.mktemp('bad')
  (root / 'empty.mp4').write_bytes(b'')
  (root / 'text.mp4').write_text('this is not a video\n')
  return root


@pytest.mark.parametrize('video, query, message', [
    ('missing.mp4', 'a red circle appears', 'no such video file'),
    ('text.mp4', 'a red circle appears', 'not a readable video'),
    ('empty.mp4', 'a red circle appears', 'zero length'),
    ('GOOD', '   ', 'empty query'),
    ('GOOD', 'red ' * 80, 'query is 82 CLIP tokens long'),
], ids=['missing', 'unreadable', 'zero-length', 'empty-query', 'long-query'])
def test_bad_inputs_exit_2_with_one_line(bad_videos, event_video, video, query, message,
                                         capsys):
  """Through the CLI's error boundary (`jaxvg.main.run`): one `error:` line, exit status 2,
  nothing written."""
  from jaxvg import main as main_lib
  path = str(event_video) if video == 'GOOD' else str(bad_videos / video)
  before = sorted(p.name for p in bad_videos.iterdir())
  with pytest.raises(SystemExit) as exit_info:
    main_lib.run('predict', str(helpers.REPO / 'configs/r2tuning/synthetic.py') + ':tiny', [],
                 str(bad_videos), 'latest', None, path, [query])
  assert exit_info.value.code == 2
  captured = capsys.readouterr()
  lines = captured.err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: ') and message in lines[0], lines
  assert 'Traceback' not in captured.out + captured.err
  assert sorted(p.name for p in bad_videos.iterdir()) == before


def test_longer_than_lighthouse_limit(predictor, tmp_path):
  """A 200 s video (Lighthouse stops at 150 s) is grounded over its whole length."""
  from jaxvg.data import synthetic
  objects = helpers.event_objects()
  objects[0]['event'] = {'kind': 'appear', 'start': 80, 'end': 90}     # 160-180 s
  path = helpers.write_mp4(synthetic.render(objects, 100), tmp_path / 'long.mp4')
  row = predictor.predict(helpers.EVENT_QUERY, path)
  assert row['duration'] == pytest.approx(200, abs=0.1)
  assert len(row['pred_saliency_scores']) == 100
  windows = np.asarray(row['pred_relevant_windows'])
  assert windows[:, 1].max() > 150 and windows[:, 1].max() <= 200


def test_too_long_video_is_a_clear_error(predictor, event_video):
  from jaxvg.predictor import InputError
  limit = predictor.config.model.max_num_clips
  predictor.config.model.max_num_clips = 4
  try:
    with pytest.raises(InputError, match=r'8 clips at 0.5 fps, more than the model handles '
                                         r'\(model.max_num_clips = 4'):
      predictor.encode_video(event_video)
  finally:
    predictor.config.model.max_num_clips = limit
