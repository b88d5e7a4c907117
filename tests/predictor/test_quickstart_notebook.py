"""notebooks/quickstart.ipynb runs end to end on the CPU (JAXVG_NOTEBOOK_CI=1: the tiny variant)."""
import nbformat
import pytest

import predictor_helpers as helpers

NOTEBOOK = helpers.REPO / 'notebooks' / 'quickstart.ipynb'


def test_committed_notebook_has_no_outputs():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  code = [c for c in notebook.cells if c.cell_type == 'code']
  assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.notebook
def test_quickstart_runs_end_to_end(cache_dir, tmp_path, monkeypatch):
  from nbclient import NotebookClient
  workdir = tmp_path / 'run'
  monkeypatch.setenv('JAXVG_NOTEBOOK_CI', '1')
  monkeypatch.setenv('JAXVG_NOTEBOOK_WORKDIR', str(workdir))
  monkeypatch.setenv('JAXVG_CACHE', str(cache_dir))      # the session's synthetic data
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  NotebookClient(notebook, timeout=600, kernel_name='python3',
                 resources={'metadata': {'path': str(helpers.REPO / 'notebooks')}}).execute()
  outputs = [o for c in notebook.cells if c.cell_type == 'code' for o in c.outputs]
  text = '\n'.join(o.get('text', '') for o in outputs)
  assert 'config: configs/r2tuning/synthetic.py:tiny' in text
  assert "mesh: {'data':" in text
  assert 'R²-Tuning ' in text and 'SDST ' in text            # the SDST comparison table
  assert "query 0: 'a red circle appears'" in text and "query 1: 'the blue square grows'" in text
  images = [o for o in outputs if 'image/png' in o.get('data', {})]
  assert len(images) == 1
  assert (workdir / 'shapes.png').stat().st_size > 10_000
  assert (workdir / 'checkpoints' / 'best').is_dir()
