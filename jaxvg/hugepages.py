"""Transparent huge pages for XLA:CPU's host buffers, by restarting the command once.

XLA:CPU allocates every temporary and output buffer of a step afresh; glibc serves allocations
above 32 MB with `mmap`, and the kernel faults them in 4 KiB at a time. The R²-Tuning train step
at QVHighlights shapes touches ≈ 2 GB of fresh buffers per step: ≈ 530 000 page faults, a
second or more of kernel time on two cores. glibc (≥ 2.35) marks its `mmap`ed chunks for
transparent huge pages when the tunable `glibc.malloc.hugetlb=1` is set (2 MiB pages: ~500×
fewer faults; ≈ 6 % off the train step in alternating pairs, docs/performance.md). Tunables are read only
at process start, so the entry points (`python -m jaxvg.main`, `python -m jaxvg.bench`) call
`reexec_with_huge_pages()` first, before JAX is imported; a notebook sets
`GLIBC_TUNABLES=glibc.malloc.hugetlb=1` before starting Python. `JAXVG_HUGE_PAGES=0` opts out.
Accelerator memory is not affected.
"""
from __future__ import annotations

import os
import pathlib
import sys

TUNABLE = 'glibc.malloc.hugetlb=1'
_THP_MODE = pathlib.Path('/sys/kernel/mm/transparent_hugepage/enabled')


def _glibc_supports_hugetlb() -> bool:
  try:
    name, version = os.confstr('CS_GNU_LIBC_VERSION').split()
  except (AttributeError, ValueError, OSError):
    return False
  return name == 'glibc' and tuple(int(v) for v in version.split('.')[:2]) >= (2, 35)


def _kernel_allows_thp() -> bool:
  try:
    mode = _THP_MODE.read_text()
  except OSError:
    return False
  return '[always]' in mode or '[madvise]' in mode


def wanted(environ: dict[str, str] | None = None) -> bool:
  """Whether a restart would turn huge pages on: Linux with glibc ≥ 2.35, THP not disabled in
  the kernel, the tunable not already set, and no opt-out."""
  env = os.environ if environ is None else environ
  return (sys.platform.startswith('linux') and env.get('JAXVG_HUGE_PAGES', '1') != '0'
          and 'glibc.malloc.hugetlb' not in env.get('GLIBC_TUNABLES', '')
          and _glibc_supports_hugetlb() and _kernel_allows_thp())


def environment(environ: dict[str, str]) -> dict[str, str]:
  """`environ` with the tunable appended to any GLIBC_TUNABLES already there."""
  tunables = environ.get('GLIBC_TUNABLES')
  return {**environ, 'GLIBC_TUNABLES': f'{tunables}:{TUNABLE}' if tunables else TUNABLE}


def reexec_with_huge_pages() -> None:
  """Replace this process by the same command with huge pages on (no-op when not `wanted`)."""
  if wanted():
    print('jaxvg: restarting once with glibc huge pages for XLA host buffers '
          '(JAXVG_HUGE_PAGES=0 opts out)', file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment(dict(os.environ)))
