"""`python -m jaxvg.main --config configs/<model>/<dataset>.py --workdir DIR [--mode ...]`.

Modes:
  train    train, evaluate on the val split every epoch, checkpoint (the default)
  eval     score the latest (or --checkpoint best) checkpoint on the val split
  predict  write the val split's submission file; or, with --video and --query, ground a query
           in one video and write its windows, JSON and a plot
  info     model summary (last line: trainable parameters: N); with a workdir also the latest
           checkpoint's step and the SHA-256 of its parameters
"""
from __future__ import annotations

from absl import app, flags, logging
from ml_collections import config_flags

from jaxvg import hugepages

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file (get_config()).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory: checkpoints, logs, predictions.')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'predict', 'info'], 'What to run.')
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', 'latest', "'latest', 'best', or a path to an official R²-Tuning checkpoint.")
_INIT_FROM = flags.DEFINE_string(
    'init_from', None, 'Official R²-Tuning checkpoint (.pth/.npz/.safetensors) to start from.')
_MULTIHOST = flags.DEFINE_bool(
    'multihost', False, 'Call jax.distributed.initialize() (TPU pod slices, multi-host GPU).')
_VIDEO = flags.DEFINE_string('video', None, 'predict: a video file to ground --query in.')
_QUERY = flags.DEFINE_multi_string('query', None, 'predict: query text (repeatable).')


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)  # keep Orbax's per-save INFO lines off the console
  if _MULTIHOST.value:
    import jax
    jax.distributed.initialize()
  from jaxvg.train import trainer  # imported after distributed initialisation
  config = _CONFIG.value
  mode = _MODE.value
  if mode == 'info':
    print(trainer.info(config, _WORKDIR.value))
    return 0
  if mode == 'predict' and _VIDEO.value:
    from jaxvg import predictor
    return predictor.main(config, _WORKDIR.value, _VIDEO.value, _QUERY.value or [],
                          _CHECKPOINT.value)
  if _WORKDIR.value is None:
    raise app.UsageError(f'--workdir is required for --mode {mode}')
  if mode == 'train':
    trainer.train_and_evaluate(config, _WORKDIR.value, init_from=_INIT_FROM.value)
  elif mode == 'eval':
    trainer.evaluate_checkpoint(config, _WORKDIR.value, _CHECKPOINT.value)
  else:
    trainer.predict_split(config, _WORKDIR.value, _CHECKPOINT.value)
  return 0


if __name__ == '__main__':
  hugepages.reexec_with_huge_pages()
  flags.mark_flag_as_required('config')
  app.run(main)
