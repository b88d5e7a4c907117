"""notebooks/stvg.ipynb runs end to end on the CPU (JAXVG_NOTEBOOK_CI=1: the tiny variant)."""
import os

import pytest

import predictor_helpers as helpers

NOTEBOOK = 'stvg.ipynb'
# The tiny run is a handful of steps: compile time dominates, so compile without XLA's
# expensive CPU passes.
FAST_COMPILE = '--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true'


@pytest.mark.notebook
def test_stvg_notebook_runs_end_to_end(cache_dir, tmp_path, monkeypatch):
  workdir = tmp_path / 'run'
  monkeypatch.setenv('XLA_FLAGS', f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip())
  outputs, text = helpers.run_notebook(NOTEBOOK, monkeypatch, cache_dir=cache_dir,
                                        workdir=workdir, timeout=900)
  assert 'config: configs/cgstvg/synthetic.py:tiny' in text
  assert 'largest' in text and 'oracle' in text and 'CG-STVG' in text
  assert "query 0: 'the red square that moves left'" in text
  assert "query 1: 'the blue circle that moves up'" in text
  images = [o for o in outputs if 'image/png' in o.get('data', {})]
  assert len(images) == 3                 # ground truth, the predicted tube, the drawn frames
  assert (workdir / 'shapes.png').stat().st_size > 10_000
  assert (workdir / 'checkpoints' / 'best').is_dir()
