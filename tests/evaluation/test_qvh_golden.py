"""The QVHighlights evaluator equals the official Moment-DETR `standalone_eval` on its golden file."""
import json


from jaxvg import evaluate as evaluate_cli
from jaxvg import evaluation


def _paths(shared):
  root = shared / 'data' / 'qvhighlights'
  return (root / 'golden' / 'sample_val_preds.jsonl', root / 'highlight_val_release.jsonl',
          root / 'golden' / 'sample_val_preds_metrics_raw.json')


def _leaves(tree, prefix=()):
  if isinstance(tree, dict):
    for key, value in tree.items():
      yield from _leaves(value, prefix + (key,))
  else:
    yield prefix, tree


def test_every_golden_number_and_key_order(shared):
  preds, gt, golden_path = _paths(shared)
  golden = json.loads(golden_path.read_text())
  result = evaluation.evaluate('qvhighlights', evaluation.load_jsonl(preds),
                               evaluation.load_jsonl(gt))
  golden_leaves, leaves = list(_leaves(golden)), list(_leaves(result))
  assert len(golden_leaves) > 100
  assert [k for k, _ in leaves] == [k for k, _ in golden_leaves]  # same keys, same order
  for (key, want), (_, got) in zip(golden_leaves, leaves):
    assert f'{got:.2f}' == f'{want:.2f}', key
  assert result['brief'][evaluation.PRIMARY_METRIC['qvhighlights']] == 32.2


def test_cli_output_file_equals_golden(shared, tmp_path, capsys):
  preds, gt, golden_path = _paths(shared)
  out = tmp_path / 'metrics.json'
  code = evaluate_cli.main(['--submission_path', str(preds), '--gt_path', str(gt),
                            '--save_path', str(out), '--not_verbose'])
  assert code == 0
  assert out.read_text() == golden_path.read_text()
  assert capsys.readouterr().out == ''


def test_submission_order_does_not_matter_on_val(shared):
  preds, gt, golden_path = _paths(shared)
  submission = evaluation.load_jsonl(preds)[::-1]
  result = evaluation.evaluate('qvhighlights', submission, evaluation.load_jsonl(gt))
  assert result == json.loads(golden_path.read_text())


def test_benchmark_entry_scores_the_golden_split(shared):
  """The benchmark times the real evaluation (figures go to notes, not assertions)."""
  from jaxvg.bench import evaluation as bench
  result = bench.run(shared, repeats=1)
  golden = json.loads(_paths(shared)[2].read_text())
  assert result['MR-full-mAP'] == golden['brief']['MR-full-mAP']
  assert result['wall_seconds'] > 0 and result['cpu_seconds'] > 0
