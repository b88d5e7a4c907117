"""Frame decoding (timing, count, crop), the ArrayRecord store, and the prepare CLI."""
import json

import av
import numpy as np
import pytest

from jaxvg.data import frames
from jaxvg.prepare import frames as prepare_frames

RATE = 5          # source frames per second
STEP = 12         # grey level of source frame i is i * STEP


def make_video(path, seconds=4, width=320, height=240):
  """Frame i is grey i*STEP, with a white bar at x in [150, 170) and red at x < 30."""
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('mpeg4', rate=RATE)
    stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
    stream.bit_rate = 8_000_000
    for i in range(seconds * RATE):
      img = np.full((height, width, 3), i * STEP, np.uint8)
      img[:, 150:170] = 255
      img[:, :30] = (255, 0, 0)
      for packet in stream.encode(av.VideoFrame.from_ndarray(img, format='rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


@pytest.fixture(scope='module')
def video(tmp_path_factory):
  path = tmp_path_factory.mktemp('videos') / 'clip_a.mp4'
  make_video(path)
  return path


def _source_index(grey):
  return np.round(grey.astype(float) / STEP).astype(int)


@pytest.mark.parametrize('fps', [1.0, 0.5, 2.0])
def test_frame_t_is_the_frame_at_t_over_fps(video, fps):
  out = frames.decode_video(str(video), fps, sampling='start')
  assert out.shape == (int(4 * fps), 224, 224, 3) and out.dtype == np.uint8
  want = [int(np.floor(t / fps * RATE + 1e-9)) for t in range(out.shape[0])]
  np.testing.assert_array_equal(_source_index(out[:, 200, 20, 1]), want)


def test_ffmpeg_sampling_picks_the_last_frame_before_the_clip_centre(video):
  out = frames.decode_video(str(video), 1.0, sampling='ffmpeg')
  # Output tick t takes the last source frame with time < t + 0.5 s: frames 2, 7, 12, 17.
  np.testing.assert_array_equal(_source_index(out[:, 200, 20, 1]), [2, 7, 12, 17])


def test_short_side_224_and_centre_crop(video):
  out = frames.decode_video(str(video), 1.0)[0]
  # 320x240 -> 298x224, crop x from 37: source x 160 (bar) -> 160*224/240 - 37 = 112.3.
  assert out[112, 110:115].min() > 200
  # The red stripe (source x < 30 -> x < 28 after scaling) is cropped away.
  red = (out[..., 0].astype(int) - out[..., 1]) > 100
  assert not red.any()


@pytest.mark.parametrize('fmt', ['jpeg', 'raw'])
def test_store_round_trip(tmp_path, fmt):
  rng = np.random.default_rng(0)
  x = np.repeat(np.repeat(rng.integers(0, 256, (3, 7, 7, 3), np.uint8), 32, 1), 32, 2)
  frames.write_video(str(tmp_path), 'vid_1', x, 0.5, fmt)
  frames.build_index(str(tmp_path))
  reader = frames.FrameReader(str(tmp_path))
  assert reader.keys() == ['vid_1'] and reader.fps('vid_1') == 0.5
  got = reader.read('vid_1')
  assert got.shape == (3, 224, 224, 3) and got.dtype == np.uint8
  if fmt == 'raw':
    np.testing.assert_array_equal(got, x)
  else:
    assert np.abs(got.astype(int) - x).mean() < 6   # JPEG q95 with chroma subsampling
  assert reader.read('vid_1', 2).shape[0] == 2
  with pytest.raises(KeyError, match='nope'):
    reader.read('nope')


def test_prepare_cli_parallel_resumable_and_skips_corrupt(tmp_path, video, capsys):
  videos = tmp_path / 'videos'
  videos.mkdir()
  (videos / 'a.mp4').write_bytes(video.read_bytes())
  (videos / 'b.mp4').write_bytes(video.read_bytes())
  (videos / 'broken.mp4').write_bytes(b'not a video at all' * 100)
  (videos / 'other.mp4').write_bytes(video.read_bytes())       # not in the annotations
  anno = tmp_path / 'anno.jsonl'
  anno.write_text(''.join(json.dumps({'vid': v, 'qid': i, 'query': 'q', 'duration': 4}) + '\n'
                          for i, v in enumerate(['a', 'b', 'broken'])))
  out = tmp_path / 'frames'
  argv = ['--videos', str(videos), '--annotations', str(anno), '--fps', '1', '--out', str(out)]
  assert prepare_frames.main(argv + ['--workers', '2']) == 1
  printed = capsys.readouterr().out
  assert '2 written' in printed and 'FAILED broken' in printed
  assert 'broken' in json.loads((out / 'failures.json').read_text())
  reader = frames.FrameReader(str(out))
  assert sorted(reader.keys()) == ['a', 'b'] and reader.read('a').shape == (4, 224, 224, 3)
  # Re-run: finished videos are skipped, only the corrupt one is retried.
  assert prepare_frames.main(argv + ['--workers', '1']) == 1
  assert '0 written, 2 already done, 1 failed' in capsys.readouterr().out


def test_prepare_auto_fps_from_youtube_fields(tmp_path, video):
  videos = tmp_path / 'videos'
  videos.mkdir()
  (videos / 'y.mp4').write_bytes(video.read_bytes())
  anno = tmp_path / 'youtube.jsonl'
  # 8 segments over 120 frames at 30 fps (4 s): 2 clips per second.
  anno.write_text(json.dumps({'vid': 'y', 'qid': 'y', 'query': 'dog', 'duration': 4,
                              'match': [0] * 8, 'frames': 120, 'fps': 30.0}) + '\n')
  out = tmp_path / 'frames'
  assert prepare_frames.main(['--videos', str(videos), '--annotations', str(anno), '--fps',
                              'auto', '--out', str(out), '--workers', '1']) == 0
  reader = frames.FrameReader(str(out))
  assert reader.fps('y') == 2.0 and reader.read('y').shape[0] == 8
