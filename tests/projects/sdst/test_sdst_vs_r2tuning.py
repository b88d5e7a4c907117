"""The SDST vs R²-Tuning comparison command (`python -m jaxvg.bench.sdst_vs_r2tuning`): both
systems on identical inputs for the same epochs, from the experiment files as they stand."""
import json

import pytest

from jaxvg.bench import sdst_vs_r2tuning as compare


@pytest.mark.parametrize('size', ['default', 'tiny'])
def test_identical_inputs_and_epochs(size):
  configs = compare.make_configs(size, overrides={'r2tuning': ['--config.seed=5']})
  r2, sdst = configs['r2tuning'], configs['sdst']
  assert (r2.task, sdst.task) == ('r2tuning', 'sdst')
  for field in compare.SHARED_FIELDS:
    assert compare._get(sdst, field) == compare._get(r2, field), field
  assert sdst.seed == 5                       # a shared field follows R²-Tuning's config
  assert sdst.train.epochs == r2.train.epochs
  assert (r2.data.dataset, sdst.data.source, r2.data.source) == ('synthetic', 'frames', 'frames')
  configs = compare.make_configs(size, epochs=3, overrides={'sdst': ['--config.optim.lr=0.002']})
  assert configs['sdst'].train.epochs == configs['r2tuning'].train.epochs == 3
  assert configs['sdst'].optim.lr == 0.002


def test_bad_arguments_exit_2(capsys):
  for argv in (['--sdst.model.no_such_field=1'], ['--other.model.dims=4'], ['--sdst.seed=1'],
               ['--only', 'sdst,nst']):
    with pytest.raises(SystemExit) as exit_info:
      compare.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: '), err


def test_history_and_table(tmp_path):
  rows = [{'step': 5, 'split': 'train', 'loss': 1.0}]
  for step, (mr_map, r1, hl) in ((38, (10.0, 20.0, 30.0)), (76, (12.5, 18.0, 31.0))):
    rows.append({'step': step, 'split': 'val', 'MR-full-mAP': mr_map, 'MR-full-R1@0.5': r1,
                 'HL-min-VeryGood-mAP': hl})
  (tmp_path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
  history = compare.val_history(tmp_path)
  assert [r['step'] for r in history] == [38, 76]
  table = compare.format_table({'r2tuning': {'epochs': history}, 'sdst': {'epochs': history[:1]}})
  lines = table.splitlines()
  assert lines[2].split() == ['1', '10.00', '20.00', '30.00', '10.00', '20.00', '30.00']
  assert lines[3].split() == ['2', '12.50', '18.00', '31.00', '-']
  assert lines[4].split() == ['best', '12.50', '20.00', '31.00', '10.00', '20.00', '30.00']
