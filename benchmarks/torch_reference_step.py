"""The official R²-Tuning train step in PyTorch, timed on this machine: the same-run anchor for
`python -m jaxvg.bench --official_step_s`.

The shared figure (6.47 s per step, `../shared/README.md`) was measured on another machine of
this kind; machines of a kind differ (the 4096³ matmul ceiling has been seen from 108 to 389
GFLOP/s here), so a speed-up is only meaningful against the official step timed on the same
machine. This script builds the official model (yeliudev/R2-Tuning with nncore 0.4.4, imported
as `tests/fixtures/r2tuning_official_fixtures.py` imports it) at QVHighlights widths and times
its forward with the official losses (`mode='train'`) + backward + grad-norm clipping + AdamW at
batch 8 × 75 clips × 4 layers × 50 tokens × 768, 20 query tokens × 512, dropout 0.5, fp32.
Needs torch and the official code (neither is a jaxvg dependency; the fixture script's
docstring sets up both):

  .venv-r2ref/bin/python benchmarks/torch_reference_step.py --r2tuning r2tuning-src

With `--alternate`, each official step is followed by one jaxvg step (the same batch shape, in
a child process running `python -m jaxvg.bench --serve_train_steps`), `--repeats` rounds, and the
speed-up is reported per round: the tightest same-machine comparison, as the host's drift during
the run moves both sides alike.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import statistics
import subprocess
import sys
from typing import Callable

import numpy as np
import torch

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # jaxvg.bench's protocol constant, whether or not jaxvg is installed
from jaxvg.bench import SERVE_PREFIX, host  # noqa: E402  (imports no JAX)

FIXTURES = REPO / 'tests/fixtures/r2tuning_official_fixtures.py'
BATCH, CLIPS, QUERY_TOKENS = 8, 75, 20


def official_model(r2tuning: pathlib.Path) -> torch.nn.Module:
  """The official QVHighlights model (its config as released: dropout 0.5, droppath 0.1), with
  the official packages imported as the parity fixtures import them."""
  spec = importlib.util.spec_from_file_location('r2tuning_official_fixtures', FIXTURES)
  fixtures = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(fixtures)
  nncore = fixtures.import_official(r2tuning)
  from nncore.nn import build_model
  config = r2tuning / 'configs/qvhighlights/r2_tuning_qvhighlights.py'
  return build_model(nncore.Config.from_file(str(config)).to_dict()['model'])


def official_step(threads: int, r2tuning: pathlib.Path) -> tuple[Callable[[], float], int]:
  """(one official train step per call, returning the loss; the trainable parameter count),
  the model and batch built once."""
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  model = official_model(r2tuning)
  model.train()   # the official R2Tuning.train returns None
  optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=1e-4)

  rng = np.random.default_rng(0)
  saliency = torch.from_numpy(rng.random((BATCH, CLIPS), np.float32))
  # The most salient clip as the positive: every clip index keeps a SampledNCE candidate (the
  # official column term turns all gradients into NaN otherwise).
  batch = dict(
      video=torch.from_numpy(rng.standard_normal((BATCH, CLIPS, 4 * 50 * 768), np.float32)),
      query=torch.from_numpy(rng.standard_normal((BATCH, QUERY_TOKENS, 4 * 512), np.float32)),
      boundary=torch.tensor([[[10.0, 30.0]]]).repeat(BATCH, 1, 1), saliency=saliency,
      pos_clip=saliency.argmax(1, keepdim=True), fps=[0.5] * BATCH)

  def step():
    optimizer.zero_grad(set_to_none=True)
    output = model(dict(batch), mode='train')   # the forward adds its own keys to the dict
    loss = sum(v for k, v in output.items() if k.startswith('loss'))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
    optimizer.step()
    return float(loss.detach())

  return step, sum(p.numel() for p in model.parameters() if p.requires_grad)


class JaxvgSteps:
  """`python -m jaxvg.bench --serve_train_steps` in a child process: one jaxvg step per call.

  Its own process, so that the two runtimes' thread pools never run at once (in one process
  they slow each other ≈ 2×); the steps alternate, so the host's drift moves both alike.
  """

  def __init__(self):
    self.child = subprocess.Popen([sys.executable, '-m', 'jaxvg.bench', '--serve_train_steps'],
                                  cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
    self.info = self._reply()  # after compilation and a warm-up step

  def _reply(self) -> dict:
    for line in self.child.stdout:
      if line.startswith(SERVE_PREFIX):
        return json.loads(line[len(SERVE_PREFIX):])
    raise RuntimeError(f'the jaxvg step server exited (code {self.child.wait()}); see its stderr')

  def __call__(self) -> dict:
    self.child.stdin.write('step\n')
    self.child.stdin.flush()
    return self._reply()

  def close(self) -> None:
    self.child.stdin.write('quit\n')
    self.child.stdin.close()
    self.child.wait()


def alternate(step: Callable[[], float], rounds: int) -> dict:
  """Official and jaxvg steps in turn, `rounds` times; the speed-up per round and overall."""
  jaxvg_steps = JaxvgSteps()
  try:
    official, jaxvg = [], []
    for _ in range(rounds):
      official.append(host.timed(step)[1])
      jaxvg.append(jaxvg_steps())
  finally:
    jaxvg_steps.close()
  per_round = [o.wall_s / j['step_s'] for o, j in zip(official, jaxvg)]
  return {'rounds': rounds, 'official_step_s': statistics.median(o.wall_s for o in official),
          'official_steal_fraction': statistics.median(o.steal_fraction for o in official),
          'jaxvg_step_s': statistics.median(j['step_s'] for j in jaxvg),
          'jaxvg_steal_fraction': statistics.median(j['steal_fraction'] for j in jaxvg),
          'jaxvg_compile_s': jaxvg_steps.info['compile_s'],
          'speedup_median_of_rounds': statistics.median(per_round),
          'speedup_min_of_rounds': min(per_round), 'speedup_max_of_rounds': max(per_round)}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--r2tuning', type=pathlib.Path, required=True,
                      help='a work tree of yeliudev/R2-Tuning, with nncore 0.4.4 importable '
                      '(tests/fixtures/r2tuning_official_fixtures.py says how)')
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--alternate', action='store_true',
                      help='alternate each official step with a jaxvg step (in a child process) '
                      'and report the speed-up per round')
  parser.add_argument('--json', default='')
  args = parser.parse_args(argv)
  step, parameters = official_step(args.threads, args.r2tuning)
  step()  # warm-up
  result = {'torch': torch.__version__, 'threads': args.threads,
            'trainable_parameters': parameters}
  if args.alternate:
    result.update(alternate(step, args.repeats))
  else:
    samples = [host.timed(step)[1] for _ in range(args.repeats)]
    walls = [s.wall_s for s in samples]
    result.update({'step_s': statistics.median(walls), 'step_s_min': min(walls),
                   'cpu_s_per_step': statistics.median(s.cpu_s for s in samples),
                   'steal_fraction': statistics.median(s.steal_fraction for s in samples)})
  print(json.dumps(result))
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(result, indent=1))
  return result


if __name__ == '__main__':
  main()
