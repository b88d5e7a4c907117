"""Shared test set-up: eight fake CPU devices for sharding tests, and the shared/ material."""
import os
import pathlib

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')

import pytest  # noqa: E402


def shared_dir() -> pathlib.Path:
  """The shared material (annotations, golden files, reference key list): $JAXVG_SHARED."""
  root = pathlib.Path(__file__).resolve().parents[1]
  return pathlib.Path(os.environ.get('JAXVG_SHARED', root.parent / 'shared')).resolve()


@pytest.fixture
def shared() -> pathlib.Path:
  """Path of shared/; skips the test, saying why, where it is absent."""
  path = shared_dir()
  if not (path / 'data').is_dir():
    pytest.skip(f'shared material not found at {path} (set JAXVG_SHARED)')
  return path
