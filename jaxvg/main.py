"""`python -m jaxvg.main --config configs/<system>/<dataset>.py[:arg] --workdir DIR [--mode ...]`.

Modes:
  train    train, evaluate on the val split every epoch, checkpoint (the default)
  eval     score the latest (or --checkpoint best, or a released checkpoint's path) on the val
           split; writes nothing
  predict  write the val split's submission file; or, with --video and --query, ground a query
           in one video and write its windows (or tube), JSON and a plot; a system that scores
           candidate tubes reads them from --proposals
  info     model summary (last line: trainable parameters: N); with a workdir also the latest
           checkpoint's step and the SHA-256 of its parameters; writes nothing

Any config field can be overridden: `--config.optim.lr=1e-4 --config.train.batch_size=32`.
Bad input (a missing file, an unknown field, a checkpoint that is not there) prints one
`error: …` line and exits with status 2.
"""
from __future__ import annotations

import ast
import sys
from typing import Sequence

import ml_collections
from absl import app, flags, logging

from jaxvg import configs, hugepages
from jaxvg.errors import UserError, cli_boundary

_CONFIG = flags.DEFINE_string('config', None, 'Experiment config file, optionally `file.py:arg`.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory: checkpoints, logs, predictions '
                               '(local or gs://).')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'predict', 'info'], 'What to run.')
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', 'latest', "'latest', 'best', or the path of a released (official) checkpoint.")
_INIT_FROM = flags.DEFINE_string(
    'init_from', None, 'Released (official) checkpoint to start training from.')
_MULTIHOST = flags.DEFINE_bool(
    'multihost', False, 'Call jax.distributed.initialize() (TPU pod slices, multi-host GPU; on '
    'CPU the coordinator, process count and id come from JAX_COORDINATOR_ADDRESS, '
    'JAX_NUM_PROCESSES and JAX_PROCESS_ID).')
_VIDEO = flags.DEFINE_string('video', None, 'predict: a video file to ground --query in.')
_QUERY = flags.DEFINE_multi_string('query', None, 'predict: query text (repeatable).')
_PROPOSALS = flags.DEFINE_string(
    'proposals', None, 'predict --video: candidate tubes of the video, for a system that scores '
    'them (zero-shot STVG; format in docs/zeroshot.md).')

OVERRIDE_PREFIX = '--config.'


def _parse_value(text: str):
  """A Python literal ('1e-4', '(8, 16)', 'True') or, failing that, the string itself."""
  lowered = text.lower()
  if lowered in ('true', 'false'):
    return lowered == 'true'
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str]) -> None:
  """Sets each `--config.a.b=value` on `config`; an unknown field names the fields there are."""
  for item in overrides:
    key, sep, text = item[len(OVERRIDE_PREFIX):].partition('=')
    if not sep:
      raise UserError(f'{item}: expected --config.<field>=<value>')
    *parents, leaf = key.split('.')
    node = config
    for depth, name in enumerate(parents + [leaf]):
      if name not in node:
        where = '.'.join(parents[:depth]) or 'config'
        raise UserError(f'{item}: {where} has no field {name!r}; its fields: {sorted(node)}')
      if depth < len(parents):
        node = node[name]
        if not isinstance(node, ml_collections.ConfigDict):
          raise UserError(f'{item}: {".".join(parents[:depth + 1])} is not a group of fields')
    value = _parse_value(text)
    current = node[leaf]
    if isinstance(current, tuple) and isinstance(value, (int, float, str)):
      value = (value,)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    try:
      node[leaf] = tuple(value) if isinstance(current, tuple) and isinstance(value, list) \
          else value
    except TypeError as e:
      raise UserError(f'{item}: {e}') from None


def split_config_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """(argv without `--config.*` overrides, the overrides): absl does not know those flags."""
  rest, overrides = [], []
  for arg in argv:
    (overrides if arg.startswith(OVERRIDE_PREFIX) else rest).append(arg)
  return rest, overrides


@cli_boundary
def run(mode: str, config_spec: str | None, overrides: Sequence[str], workdir: str | None,
        checkpoint: str, init_from: str | None, video: str | None,
        queries: Sequence[str], proposals: str | None = None) -> int:
  """Everything after flag parsing; a `UserError` anywhere ends as one `error:` line, exit 2."""
  if not config_spec:
    raise UserError('--config is required (e.g. --config configs/r2tuning/synthetic.py)')
  config = configs.load(config_spec)
  apply_overrides(config, overrides)
  config.lock()
  from jaxvg import registry
  task = registry.get_task(config.task)
  if proposals and not video:
    raise UserError('--proposals needs --video (the video whose candidate tubes it holds)')
  if task.runner is not None:
    user_video = registry.UserVideo(video, tuple(queries), proposals) if video else None
    task.runner(config, workdir, mode, user_video)
    return 0
  if proposals:
    raise UserError(f'--proposals: task {task.name!r} grounds without candidate tubes')
  from jaxvg.train import trainer  # imported after distributed initialisation
  if mode == 'info':
    print(trainer.info(config, workdir))
    return 0
  if mode == 'predict' and video:
    from jaxvg import predictor
    predictor.main(config, workdir, video, queries, checkpoint)
    return 0
  if not workdir and not (mode == 'eval' and checkpoint not in ('latest', 'best')):
    raise UserError(f'--workdir is required for --mode {mode}')
  if mode == 'train':
    trainer.train_and_evaluate(config, workdir, init_from=init_from)
  elif mode == 'eval':
    trainer.evaluate_checkpoint(config, workdir, checkpoint)
  else:
    trainer.predict_split(config, workdir, checkpoint)
  return 0


def initialize_distributed() -> None:
  """`jax.distributed.initialize()`: on TPU pods and managed GPU clusters it finds its peers
  itself; elsewhere (CPU processes on one machine, tests) JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES and JAX_PROCESS_ID name them, and CPU collectives go through gloo."""
  import os
  import jax
  address = os.environ.get('JAX_COORDINATOR_ADDRESS')
  if not address:
    jax.distributed.initialize()
    return
  if jax.config.jax_platforms in ('cpu', None) or os.environ.get('JAX_PLATFORMS') == 'cpu':
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(address, int(os.environ['JAX_NUM_PROCESSES']),
                             int(os.environ['JAX_PROCESS_ID']))


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)  # keep Orbax's per-save INFO lines off the console
  if _MULTIHOST.value:
    initialize_distributed()
  return run(_MODE.value, _CONFIG.value, _OVERRIDES, _WORKDIR.value, _CHECKPOINT.value,
             _INIT_FROM.value, _VIDEO.value, _QUERY.value or [], _PROPOSALS.value)


_OVERRIDES: list[str] = []

if __name__ == '__main__':
  hugepages.reexec_with_huge_pages()
  sys.argv, _OVERRIDES = split_config_args(sys.argv)
  app.run(main)
