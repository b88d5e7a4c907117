"""Grounding in a user's video: the tracks file's validation, the heat-map overlay, and
`python -m jaxvg.main --mode predict --video --query --proposals` end to end on a tiny video
written here, with the tiny random OneVision backend (the tube follows the chosen track)."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxvg.data.records import AnnotationError
from jaxvg.data.synthetic_tubes import write_video
from jaxvg.errors import UserError
from jaxvg.modules.pooling import bilinear_resize_matrix
from jaxvg import plotting_tubes
from jaxvg.projects.zeroshot import plotting, proposals, runner
from jaxvg.projects.zeroshot import video as video_lib
from jaxvg.registry import UserVideo
from jaxvg_testing import ROOT, load_config

WIDTH, HEIGHT, NUM_FRAMES = 64, 48, 12
FRAMES = [0, 2, 4, 6, 8, 10]
# Track 0 lies between the sample points of torch's bilinear 48x64 -> 3x3 resize (rows 7-8,
# 23-24, 39-40; columns 10-11, 31-32, 52-53), so its resized mask is zero and it scores 0 on
# any map; track 1 covers sample points on the frames where it exists, so it must be chosen.
SMALL = [14, 12, 18, 16]
MOVING = [None] + [[4.0 * k, 4.0, 16.0 + 4.0 * k, 44.0] for k in range(1, len(FRAMES))]
TRACKS = {'frames': FRAMES, 'tracks': [{'id': 'small', 'boxes': [SMALL] * len(FRAMES)},
                                       {'id': 'person', 'boxes': MOVING}]}


def write_inputs(folder):
  """A tiny lossless video (a bright square on grey) and its tracks file."""
  os.makedirs(folder, exist_ok=True)
  frames = np.full((NUM_FRAMES, HEIGHT, WIDTH, 3), 110, np.uint8)
  for t in range(NUM_FRAMES):
    frames[t, 8:40, 4 + t:36 + t] = (230, 30, 30)
  video, tracks = os.path.join(folder, 'clip.mp4'), os.path.join(folder, 'tracks.json')
  write_video(video, frames)
  with open(tracks, 'w') as f:
    json.dump(TRACKS, f)
  return video, tracks


def test_sample_points_of_the_resize_miss_the_small_track():
  mask = proposals.box_mask(np.array(SMALL, np.float32), HEIGHT, WIDTH).astype(np.float64)
  small = bilinear_resize_matrix(HEIGHT, 3) @ mask @ bilinear_resize_matrix(WIDTH, 3).T
  assert small.max() == 0.0 and mask.sum() == 16


@pytest.mark.parametrize('edit, message', [
    (lambda d: d.pop('frames'), "missing field 'frames'"),
    (lambda d: d.update(frames=[0, 2, 2, 6, 8, 10]), "field 'frames' must be"),
    (lambda d: d['tracks'][1]['boxes'].pop(), 'tracks[1].boxes: expected one entry per frame'),
    (lambda d: d['tracks'][1]['boxes'].__setitem__(2, [30, 4, 10, 44]), r'tracks[1].boxes[2]:'),
    (lambda d: d['tracks'][0]['boxes'].__setitem__(0, [0, 0, 99, 10]), r'tracks[0].boxes[0]:'),
    (lambda d: d['tracks'][0].update(boxes=[None] * 6), 'tracks[0].boxes: the track has no box'),
    (lambda d: d.update(tracks=[]), "field 'tracks' must be a non-empty list"),
])
def test_bad_tracks_file_names_file_and_field(tmp_path, edit, message):
  data = json.loads(json.dumps(TRACKS))
  edit(data)
  path = tmp_path / 'tracks.json'
  path.write_text(json.dumps(data))
  with pytest.raises(AnnotationError) as info:
    proposals.read_candidates(str(path), WIDTH, HEIGHT)
  assert str(info.value).startswith(str(path)) and message in str(info.value)


def test_tracks_file_reads_as_candidate_tubes(tmp_path):
  path = tmp_path / 'tracks.json'
  path.write_text(json.dumps(TRACKS))
  tubes = proposals.read_candidates(str(path), WIDTH, HEIGHT)
  assert tubes.track_ids == ('small', 'person') and tubes.frame_ids.tolist() == FRAMES
  assert tubes.boxes.shape == (2, len(FRAMES), 4) and not tubes.boxes[1, 0].any()


def test_frames_past_the_video_end_stop_before_the_model_loads(tmp_path):
  video, tracks = write_inputs(tmp_path)
  data = json.loads(json.dumps(TRACKS))
  data['frames'][-1] = NUM_FRAMES
  pathlib.Path(tracks).write_text(json.dumps(data))
  config = load_config('zeroshot/synthetic.py:tiny', **{'model.folder': ''})  # no model to load
  with pytest.raises(AnnotationError, match=r"field 'frames': frame 12 is past the last frame"):
    video_lib.ground_video(config, str(tmp_path / 'run'), UserVideo(video, ('q',), tracks))
  assert not (tmp_path / 'run').exists()


def test_queries_and_proposals_are_required(tmp_path):
  video, tracks = write_inputs(tmp_path)
  config = load_config('zeroshot/synthetic.py:tiny')
  with pytest.raises(UserError, match='no --query given'):
    video_lib.ground_video(config, None, UserVideo(video, (), tracks))
  with pytest.raises(UserError, match='--proposals is required'):
    video_lib.ground_video(config, None, UserVideo(video, ('q',), None))


def test_heat_overlay_colours_where_the_map_is_high():
  frame = np.full((30, 30, 3), 128, np.uint8)
  heat = np.zeros((3, 3))
  heat[0, 0] = 1.0
  out = plotting.heat_overlay(frame, heat, vmax=1.0)
  # jet: 1 -> dark red, 0 -> dark blue; the top-left cell's centre is red, the far corner blue.
  assert out[5, 5, 0] > out[5, 5, 2] and out[25, 25, 2] > out[25, 25, 0]


def test_strip_draws_the_chosen_track_over_the_others(tmp_path):
  path = tmp_path / 'tracks.json'
  path.write_text(json.dumps(TRACKS))
  tubes = proposals.read_candidates(str(path), WIDTH, HEIGHT)
  frames = np.full((2, 30, 40, 3), 128, np.uint8)   # decoded at the tiny tower's short side 30
  grounded = runner.GroundedTube(tubes, np.array([0, 1]), frames,
                                 {'track': 1, 'spatial_map': np.ones((2, 3, 3))})
  images, picks = plotting.annotated_frames(grounded)
  assert picks.tolist() == [0, 1] and images.shape == (2, 240, 320, 3)   # enlarged 8x
  x1, y1 = (np.array(MOVING[1][:2]) * 5).astype(int)      # 320 / WIDTH = 240 / HEIGHT = 5
  assert tuple(images[1, y1 + 1, x1 + 1]) == plotting_tubes.PRED_COLOUR  # track 1 on frame 2
  x1, y1 = (np.array(SMALL[:2]) * 5).astype(int)
  assert tuple(images[0, y1, x1]) == plotting.OTHER_COLOUR  # track 1 absent on frame 0
  assert not np.any(np.all(images[0] == plotting_tubes.PRED_COLOUR, axis=-1))


def test_cli_grounds_a_query_in_a_user_video(tmp_path):
  pytest.importorskip('tokenizers', reason='pinned in requirements.txt (pip install -r ...)')
  video, tracks = write_inputs(tmp_path / 'inputs')
  command = [sys.executable, '-m', 'jaxvg.main', '--config=configs/zeroshot/synthetic.py:tiny',
             '--mode=predict', f'--video={video}', '--query=the red square that moves right',
             '--query=a person', f'--proposals={tracks}', f'--workdir={tmp_path}/run']
  done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                        env={**os.environ, 'JAXVG_HUGE_PAGES': '0'})
  assert done.returncode == 0, done.stderr[-3000:]
  rows = json.loads((tmp_path / 'run' / 'predictions' / 'clip.json').read_text())
  assert [r['query'] for r in rows] == ['the red square that moves right', 'a person']
  for row in rows:
    assert row['track_id'] == 'person' and row['track'] == 1
    assert int(np.argmax(row['track_scores'])) == 1 and row['track_scores'][0] == 0.0
    # The tube is the chosen track's boxes from its first frame (2) to its last (10),
    # linearly interpolated on the raw frames between.
    assert row['frame_ids'] == list(range(2, 11))
    np.testing.assert_allclose(row['boxes'][::2], MOVING[1:])
    np.testing.assert_allclose(row['boxes'][1], [6.0, 4.0, 22.0, 44.0])
    first, last = row['span']
    assert first <= last and first in FRAMES and last in FRAMES
    assert len(row['frame_scores']) == len(row['sampled_frames'])
  assert "-> track 'person'" in done.stdout
  png = tmp_path / 'run' / 'predictions' / 'clip.png'
  from PIL import Image
  assert Image.open(png).size == (plotting.WIDTH_PX, 2 * plotting.ROW_HEIGHT_PX)
