"""Shared test set-up: eight fake CPU devices for sharding tests, a persistent compilation cache
shared with the subprocesses tests start, and the shared/ material."""
import os
import pathlib
import tempfile

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
# Compiled programs are reused across tests and by the `python -m jaxvg.main` runs tests start.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      os.path.join(tempfile.gettempdir(), 'jaxvg-test-compilation-cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')

import pytest  # noqa: E402


def shared_dir() -> pathlib.Path:
  """The shared material (annotations, golden files, reference key list): $JAXVG_SHARED."""
  root = pathlib.Path(__file__).resolve().parents[1]
  return pathlib.Path(os.environ.get('JAXVG_SHARED', root.parent / 'shared')).resolve()


@pytest.fixture
def shared() -> pathlib.Path:
  """Path of shared/. Where it is absent the test is skipped, saying why, unless JAXVG_SHARED
  names it explicitly (as CI does): then its absence is a failure, not a silent skip."""
  path = shared_dir()
  if not (path / 'data').is_dir():
    if 'JAXVG_SHARED' in os.environ:
      pytest.fail(f'JAXVG_SHARED={os.environ["JAXVG_SHARED"]} has no data/ folder')
    pytest.skip(f'shared material not found at {path} (set JAXVG_SHARED)')
  return path


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> str:
  """One generated copy of the tiny synthetic benchmark for the whole session."""
  from jaxvg.data import synthetic
  root = str(tmp_path_factory.getbasetemp().parent / 'jaxvg-synthetic')
  synthetic.ensure_synthetic(root, 'tiny')
  return root
