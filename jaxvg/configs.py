"""The one config loader, used by the CLI, the tests and the notebooks.

    config = jaxvg.configs.load('configs/r2tuning/tvsum.py:BK')

An experiment file defines `get_config()` or `get_config(arg)`; the text after the last ':' is its
argument. Bad paths, files without `get_config` and invalid arguments fail at once with a
`UserError` naming the file.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
from typing import Any, Mapping

import ml_collections

from jaxvg.errors import UserError


def split_spec(spec: str) -> tuple[str, str | None]:
  """'file.py:arg' -> ('file.py', 'arg'); 'file.py' -> ('file.py', None)."""
  path, sep, arg = spec.rpartition(':')
  if sep and path.endswith('.py'):
    return path, arg
  return spec, None


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads `path[:arg]` and returns its `get_config([arg])`."""
  path, arg = split_spec(spec)
  if not os.path.isfile(path):
    raise UserError(f'{path}: no such config file')
  module_spec = importlib.util.spec_from_file_location(
      f'jaxvg_config_{abs(hash(os.path.abspath(path)))}', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  get_config = getattr(module, 'get_config', None)
  if get_config is None:
    raise UserError(f'{path}: defines no get_config()')
  takes_arg = bool(inspect.signature(get_config).parameters)
  if arg is not None and not takes_arg:
    raise UserError(f'{path}: get_config() takes no argument, got {arg!r}')
  try:
    return get_config(arg) if arg is not None else get_config()
  except ValueError as e:  # get_config's own validation of its argument
    raise UserError(f'{path}: {e}') from None


def from_saved(saved: Mapping[str, Any], base: ml_collections.ConfigDict | None = None
               ) -> ml_collections.ConfigDict:
  """A config written as JSON (a run's `config.json`) -> ConfigDict: JSON's lists back to the
  tuples configs hold, and every field the saved config lacks (it predates the field) taken
  from `base`; saved values win, and saved fields `base` lacks are kept."""
  def merge(default: Any, value: Any) -> Any:
    if isinstance(value, Mapping):
      default = default if isinstance(default, Mapping) else {}
      keys = list(default) + [k for k in value if k not in default]
      return {k: merge(default.get(k), value[k]) if k in value else default[k] for k in keys}
    if isinstance(value, list):
      return tuple(merge(None, v) for v in value)
    return value
  return ml_collections.ConfigDict(merge(base.to_dict() if base is not None else {}, saved))
