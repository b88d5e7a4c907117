"""The one error class for bad user input, caught once by every command-line entry point.

Readers, converters, validators and the CLIs raise `UserError` (or a subclass) where a bad input
is first seen, with a message naming the file, line, field or flag; `cli_boundary` prints it as
one `error: …` line and exits with status 2. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

EXIT_USER_ERROR = 2

F = TypeVar('F', bound=Callable)


class UserError(ValueError):
  """A bad input (file, flag, config value); the message says what and where."""


def cli_boundary(main: F) -> F:
  """Wraps a CLI's main: a `UserError` becomes `error: <message>` on stderr and exit status 2."""
  @functools.wraps(main)
  def wrapped(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except UserError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(EXIT_USER_ERROR)
  return wrapped  # type: ignore[return-value]
