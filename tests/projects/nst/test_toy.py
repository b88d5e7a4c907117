"""End to end on the toy mixed-quality task (tiny): NST keeps the base's HQ outputs wherever its
quality gate calls the input HQ, exactly so with q = 0; LoRA moves them; tuning learns."""
import dataclasses

from jaxvg.projects.nst import toy


def test_nst_keeps_hq_outputs_and_lora_does_not():
  config = dataclasses.replace(toy.ToyConfig(), train_size=256, test_size=128, base_steps=60,
                               tune_steps=40, methods=('frozen', 'lora', 'nst'))
  result = toy.run(config)
  rows = result['rows']
  assert rows['frozen']['hq_accuracy'] > 0.5  # the base learned its task
  assert result['guarantee']['q0_relative_drift'] < 1e-5
  nst, lora = rows['nst'], rows['lora']
  # Every HQ input the gate passes as HQ gives the base's output; the rest may move.
  assert abs(nst['hq_unchanged'] - nst['gate_hq_correct']) < 1e-6
  assert nst['hq_unchanged'] > 0  # the gate passes some HQ inputs through
  assert lora['hq_unchanged'] == 0 and lora['hq_max_drift'] > 1e-2
  assert nst['trainable'] > 0 and rows['frozen']['trainable'] == 0
  table = toy.format_table(result)
  assert table.count('\n| ') == 3 and 'q = 0 forced' in table
