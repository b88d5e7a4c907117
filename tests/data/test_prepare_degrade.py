"""`python -m jaxvg.prepare degrade`: H.264 re-encoding through PyAV, by CRF or by the protocol."""
import json
import os

import av
import numpy as np
import pytest

from jaxvg.data import degradations
from jaxvg.prepare import __main__ as prepare_main
from jaxvg.prepare import degrade


def _write_video(path, frames=12, size=(48, 64), seed=0):
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:size[0], :size[1]]
  with av.open(path, 'w') as container:
    stream = container.add_stream('libx264', rate=8)
    stream.width, stream.height, stream.pix_fmt = size[1], size[0], 'yuv420p'
    stream.options = {'crf': '0'}
    for t in range(frames):
      image = np.stack([(x * 4 + t * 5) % 256, (y * 5) % 256, 128 + 60 * np.sin((x + t) / 3)], -1)
      image = np.clip(image + rng.normal(scale=20, size=image.shape), 0, 255).astype(np.uint8)
      for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def _decode(path):
  with av.open(path) as container:
    return np.stack([f.to_ndarray(format='rgb24') for f in container.decode(video=0)]).astype(float)


def _psnr(a, b):
  return 10 * np.log10(255 ** 2 / np.mean(np.square(a - b)))


def test_crf_orders_quality(tmp_path):
  source = str(tmp_path / 'clip.mp4')
  _write_video(source)
  clean = _decode(source)
  psnr = {}
  for crf in (23, 51):
    target = str(tmp_path / f'clip_{crf}.mp4')
    assert degrade.reencode_h264(source, target, crf) == 12
    decoded = _decode(target)
    assert decoded.shape == clean.shape
    psnr[crf] = _psnr(decoded, clean)
  assert psnr[23] > 28 and psnr[51] < psnr[23] - 6, psnr
  with pytest.raises(ValueError, match='CRF'):
    degrade.reencode_h264(source, str(tmp_path / 'x.mp4'), 60)


def test_cli_follows_the_mixing_protocol(tmp_path, capsys):
  videos = tmp_path / 'videos'
  videos.mkdir()
  names = [f'v{i}' for i in range(6)]
  for i, name in enumerate(names):
    _write_video(str(videos / f'{name}.mp4'), frames=3, size=(32, 32), seed=i)
  argv = ['degrade', '--videos', str(videos), '--out', str(tmp_path / 'out'), '--seed', '3',
          '--probability', '0.7', '--kinds', 'h264', 'jpeg', '--severities', '2', '5']
  assert prepare_main.main(argv) == 0
  protocol = degradations.MixingProtocol(0.7, ('h264', 'jpeg'), (2, 5))
  expected = {v: d.crf for v, d in degradations.draws(protocol, 3, names).items() if d.crf}
  assert expected  # the seed gives at least one H.264 video
  with open(tmp_path / 'out' / 'degraded.json') as f:
    assert json.load(f) == expected
  assert sorted(os.listdir(tmp_path / 'out')) == sorted([f'{v}.mp4' for v in expected] +
                                                        ['degraded.json'])
  with pytest.raises(SystemExit) as exit_info:
    prepare_main.main(['degrade', '--videos', str(videos), '--out', str(tmp_path / 'x')])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err.startswith('error: give exactly one')
