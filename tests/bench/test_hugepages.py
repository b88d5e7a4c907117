"""The entry points' restart with transparent huge pages: the tunable is appended to existing
ones, the opt-out and an existing setting are honoured, and the restart really happens (and
only once) where glibc and the kernel support it."""
import os
import subprocess
import sys

import pytest

from jaxvg import hugepages

_PRINT_TUNABLES = ('from jaxvg import hugepages; hugepages.reexec_with_huge_pages(); '
                   'import os; print(os.environ.get("GLIBC_TUNABLES", ""))')


def test_environment_appends_to_existing_tunables():
  assert hugepages.environment({})['GLIBC_TUNABLES'] == 'glibc.malloc.hugetlb=1'
  env = hugepages.environment({'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2', 'X': '1'})
  assert env == {'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1', 'X': '1'}


def test_opt_out_and_existing_setting_are_honoured():
  assert not hugepages.wanted({'JAXVG_HUGE_PAGES': '0'})
  assert not hugepages.wanted({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0'})


def _run(extra_env):
  env = {k: v for k, v in os.environ.items() if k not in ('GLIBC_TUNABLES', 'JAXVG_HUGE_PAGES')}
  return subprocess.run([sys.executable, '-c', _PRINT_TUNABLES], env={**env, **extra_env},
                        capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(not hugepages.wanted({}), reason='needs Linux, glibc >= 2.35 and THP not '
                    'disabled in the kernel')
def test_restart_sets_the_tunable_once():
  assert _run({}) == 'glibc.malloc.hugetlb=1'   # restarted once: the tunable appears once
  assert _run({'JAXVG_HUGE_PAGES': '0'}) == ''
