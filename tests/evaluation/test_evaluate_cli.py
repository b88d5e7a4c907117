"""`python -m jaxvg.evaluate`: bad submissions are reported with file, line and qid, exit code 2."""
import json
import subprocess
import sys

import pytest

from jaxvg import evaluate as evaluate_cli
from jaxvg import evaluation

GT = [{'qid': 10 + i, 'query': 'q', 'vid': f'v{i}', 'duration': 150,
       'relevant_windows': [[20, 40]], 'relevant_clip_ids': list(range(10, 20)),
       'saliency_scores': [[2, 3, 4]] * 10} for i in range(4)]


def _good():
  return [{'qid': r['qid'], 'pred_relevant_windows': [[20.0, 40.0, 0.9], [0.0, 10.0, 0.1]],
           'pred_saliency_scores': [0.5] * 75} for r in GT]


def _write(path, rows, raw_lines=None):
  lines = [json.dumps(r) for r in rows] if raw_lines is None else raw_lines
  path.write_text('\n'.join(lines) + '\n')
  return str(path)


def _run(tmp_path, submission_lines, capsys, rows=None):
  sub = _write(tmp_path / 'sub.jsonl', rows, submission_lines)
  gt = _write(tmp_path / 'gt.jsonl', GT)
  try:
    code = evaluate_cli.main(['--submission_path', sub, '--gt_path', gt,
                              '--save_path', str(tmp_path / 'out.json'), '--not_verbose'])
  except SystemExit as e:   # the CLI's error boundary: one `error:` line, exit status 2
    code = e.code
  return code, capsys.readouterr().err


def _lines(rows):
  return [json.dumps(r) for r in rows]


def test_good_submission_scores_and_saves(tmp_path, capsys):
  code, err = _run(tmp_path, _lines(_good()), capsys)
  assert code == 0 and err == ''
  result = json.loads((tmp_path / 'out.json').read_text())
  assert result['brief']['MR-full-R1@0.5'] == 100.0 and result['brief']['MR-full-mAP'] == 100.0


def test_missing_qid_names_it_and_its_gt_line(tmp_path, capsys):
  code, err = _run(tmp_path, _lines(_good()[:2] + _good()[3:]), capsys)
  assert code == 2
  assert 'qid 12' in err and 'gt.jsonl:3' in err and 'missing' in err


def test_empty_window_list_names_qid_and_line(tmp_path, capsys):
  rows = _good()
  rows[2]['pred_relevant_windows'] = []
  code, err = _run(tmp_path, _lines(rows), capsys)
  assert code == 2 and 'sub.jsonl:3' in err and 'qid 12' in err and 'non-empty' in err


def test_start_after_end_names_qid_and_line(tmp_path, capsys):
  rows = _good()
  rows[3]['pred_relevant_windows'][1] = [30.0, 10.0, 0.1]
  code, err = _run(tmp_path, _lines(rows), capsys)
  assert code == 2 and 'sub.jsonl:4' in err and 'qid 13' in err and 'start 30.0 > end 10.0' in err


def test_malformed_line_names_file_and_line(tmp_path, capsys):
  lines = _lines(_good())
  lines[1] = lines[1][:-5]
  code, err = _run(tmp_path, lines, capsys)
  assert code == 2 and 'sub.jsonl:2' in err and 'malformed' in err


@pytest.mark.parametrize('field, value, message', [
    ('pred_saliency_scores', [0.1, 'x'], 'pred_saliency_scores'),
    ('pred_relevant_windows', [[1.0, 2.0]], '[start, end, score]'),
    ('qid', 999, 'not in the ground truth'),
])
def test_other_bad_rows(tmp_path, capsys, field, value, message):
  rows = _good()
  rows[1][field] = value
  code, err = _run(tmp_path, _lines(rows), capsys)
  assert code == 2 and 'sub.jsonl:2' in err and message in err


def test_blank_lines_keep_line_numbers(tmp_path, capsys):
  rows = _good()
  rows[1]['pred_relevant_windows'] = []
  lines = _lines(rows)
  code, err = _run(tmp_path, [''] + lines, capsys)
  assert code == 2 and 'sub.jsonl:3' in err


def test_api_errors_name_row_and_qid():
  rows = _good()
  rows[0]['pred_relevant_windows'][0] = [5.0, 1.0, 0.3]
  with pytest.raises(evaluation.EvaluationInputError, match=r'submission row 1: qid 10'):
    evaluation.evaluate('qvhighlights', rows, GT)


def test_load_jsonl_reports_file_and_line(tmp_path):
  path = tmp_path / 'x.jsonl'
  path.write_text('{"qid": 1}\n[1, 2]\n')
  with pytest.raises(evaluation.EvaluationInputError, match=r'x.jsonl:2: expected a JSON object'):
    evaluation.load_jsonl(path)


def test_module_entry_point_exits_2_without_traceback(tmp_path):
  rows = _good()
  rows[0]['pred_relevant_windows'] = []
  sub = _write(tmp_path / 'sub.jsonl', rows)
  gt = _write(tmp_path / 'gt.jsonl', GT)
  proc = subprocess.run([sys.executable, '-m', 'jaxvg.evaluate', '--submission_path', sub,
                         '--gt_path', gt, '--dataset', 'charades_sta'],
                        capture_output=True, text=True)
  assert proc.returncode == 2
  assert 'Traceback' not in proc.stderr and 'sub.jsonl:1: qid 10' in proc.stderr
