"""Every command-line entry point turns bad input into one `error: …` line and exit status 2,
never a traceback, and the read-only modes create nothing."""
import json
import subprocess
import sys

import numpy as np
import pytest

from jaxvg.data.synthetic_tubes import write_video

from jaxvg_testing import ROOT

SYNTHETIC = 'configs/r2tuning/synthetic.py:tiny'
MAIN = [sys.executable, '-m', 'jaxvg.main']

CASES = {
    'config file missing': (MAIN + ['--config=configs/nope.py', '--workdir={tmp}/w'],
                            'configs/nope.py: no such config file'),
    'bad get_config argument': (MAIN + ['--config=configs/r2tuning/synthetic.py:huge',
                                        '--workdir={tmp}/w'], 'size must be one of'),
    'unknown override': (MAIN + [f'--config={SYNTHETIC}', '--config.optim.lrr=1',
                                 '--workdir={tmp}/w'], "optim has no field 'lrr'"),
    'unknown task': (MAIN + [f'--config={SYNTHETIC}', '--config.task=nope',
                             '--mode=info'], "unknown task 'nope'"),
    'eval without checkpoints': (MAIN + [f'--config={SYNTHETIC}', '--mode=eval',
                                         '--workdir={tmp}/never'], 'no checkpoints in'),
    'predict into a new workdir': (MAIN + [f'--config={SYNTHETIC}', '--mode=predict',
                                           '--workdir={tmp}/never'], 'no checkpoints in'),
    'predict a missing video': (MAIN + [f'--config={SYNTHETIC}', '--mode=predict',
                                        '--video={tmp}/nope.mp4', '--query=a red circle'],
                                'nope.mp4: no such video file'),
    'released checkpoint missing': (MAIN + [f'--config={SYNTHETIC}', '--mode=eval',
                                            '--checkpoint={tmp}/model.pth'],
                                    'model.pth: no such checkpoint file'),
    'prepare frames without videos': ([sys.executable, '-m', 'jaxvg.prepare', 'frames',
                                       '--videos={tmp}/none', '--fps=0.5', '--out={tmp}/f'],
                                      'no such directory of videos'),
    'prepare features without annotations': (
        [sys.executable, '-m', 'jaxvg.prepare', 'features', '--clip=random', '--arch=tiny',
         '--annotations={tmp}/a.jsonl', '--out={tmp}/feat'], 'no such annotation file'),
    'evaluate a missing file': ([sys.executable, '-m', 'jaxvg.evaluate',
                                 '--submission_path={tmp}/p.jsonl', '--gt_path={tmp}/g.jsonl'],
                                'p.jsonl: no such file'),
    'bench unknown suite': ([sys.executable, '-m', 'jaxvg.bench', '--only=nope'],
                            'unknown suites'),
}


def assert_one_error_line(command, message, tmp_path, inputs=()):
  """`command` exits 2 with one `error:` line holding `message`, and writes nothing beside the
  `inputs` in tmp_path."""
  done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                        env={**__import__('os').environ, 'JAXVG_HUGE_PAGES': '0'})
  assert done.returncode == 2, (done.stdout[-2000:], done.stderr[-2000:])
  errors = [line for line in done.stderr.splitlines() if line.startswith('error: ')]
  assert len(errors) == 1 and message in errors[0], done.stderr[-2000:]
  assert 'Traceback' not in done.stderr
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(inputs), \
      'a failed command wrote files'


@pytest.mark.parametrize('case', sorted(CASES))
def test_bad_input_is_one_error_line_and_exit_2(case, tmp_path):
  command, message = CASES[case]
  assert_one_error_line([arg.replace('{tmp}', str(tmp_path)) for arg in command], message,
                        tmp_path)


ZEROSHOT_VIDEO = MAIN + ['--config=configs/zeroshot/synthetic.py:tiny', '--mode=predict',
                         '--video={inputs}/clip.mp4', '--query=a red square',
                         '--proposals={inputs}/tracks.json', '--workdir={tmp}/run']


def test_bad_zero_shot_tracks_file_is_one_error_line_and_exit_2(tmp_path):
  """The tracks file is checked (file and field named) before the model loads; nothing is
  written. (Its other checks run in-process: tests/projects/zeroshot/test_video.py.)"""
  inputs = tmp_path / 'inputs'
  inputs.mkdir()
  write_video(str(inputs / 'clip.mp4'), np.full((4, 32, 48, 3), 100, np.uint8))
  (inputs / 'tracks.json').write_text(json.dumps(
      {'frames': [0, 2], 'tracks': [{'id': 0, 'boxes': [[0, 0, 10, 10], [20, 0, 10, 10]]}]}))
  command = [arg.replace('{inputs}', str(inputs)).replace('{tmp}', str(tmp_path))
             for arg in ZEROSHOT_VIDEO]
  assert_one_error_line(command, 'tracks.json: tracks[0].boxes[1]: expected null or [x1, y1, '
                        'x2, y2]', tmp_path, inputs=['inputs'])
