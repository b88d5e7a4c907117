"""notebooks/stvg.ipynb runs end to end on the CPU (JAXVG_NOTEBOOK_CI=1: the tiny variant)."""
import os

import nbformat
import pytest

import predictor_helpers as helpers

NOTEBOOK = helpers.REPO / 'notebooks' / 'stvg.ipynb'
# The tiny run is a handful of steps: compile time dominates, so compile without XLA's
# expensive CPU passes.
FAST_COMPILE = '--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true'


def test_committed_notebook_has_no_outputs():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  code = [c for c in notebook.cells if c.cell_type == 'code']
  assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.notebook
def test_stvg_notebook_runs_end_to_end(cache_dir, tmp_path, monkeypatch):
  from nbclient import NotebookClient
  workdir = tmp_path / 'run'
  monkeypatch.setenv('JAXVG_NOTEBOOK_CI', '1')
  monkeypatch.setenv('JAXVG_NOTEBOOK_WORKDIR', str(workdir))
  monkeypatch.setenv('JAXVG_CACHE', str(cache_dir))      # the session's synthetic data
  monkeypatch.setenv('XLA_FLAGS', f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip())
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  NotebookClient(notebook, timeout=900, kernel_name='python3',
                 resources={'metadata': {'path': str(helpers.REPO / 'notebooks')}}).execute()
  outputs = [o for c in notebook.cells if c.cell_type == 'code' for o in c.outputs]
  text = '\n'.join(o.get('text', '') for o in outputs)
  assert 'config: configs/cgstvg/synthetic.py:tiny' in text
  assert 'largest' in text and 'oracle' in text and 'CG-STVG' in text
  assert "query 0: 'the red square that moves left'" in text
  assert "query 1: 'the blue circle that moves up'" in text
  images = [o for o in outputs if 'image/png' in o.get('data', {})]
  assert len(images) == 3                 # ground truth, the predicted tube, the drawn frames
  assert (workdir / 'shapes.png').stat().st_size > 10_000
  assert (workdir / 'checkpoints' / 'best').is_dir()
