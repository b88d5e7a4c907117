"""notebooks/stvg_zeroshot.ipynb runs end to end on the CPU (JAXVG_NOTEBOOK_CI=1: the tiny random
backend): three settings grounded, the heat maps and the tube drawn, LRA raising its margin."""
import nbformat
import pytest

import predictor_helpers as helpers

NOTEBOOK = helpers.REPO / 'notebooks' / 'stvg_zeroshot.ipynb'


def test_committed_notebook_has_no_outputs():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  code = [c for c in notebook.cells if c.cell_type == 'code']
  assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.notebook
def test_zeroshot_notebook_runs_end_to_end(cache_dir, tmp_path, monkeypatch):
  pytest.importorskip('tokenizers', reason='pinned in requirements.txt (pip install -r ...)')
  from nbclient import NotebookClient
  monkeypatch.setenv('JAXVG_NOTEBOOK_CI', '1')
  monkeypatch.setenv('JAXVG_CACHE', str(cache_dir))      # the session's synthetic data
  monkeypatch.setenv('JAXVG_NOTEBOOK_WORKDIR', str(tmp_path))
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  NotebookClient(notebook, timeout=600, kernel_name='python3',
                 resources={'metadata': {'path': str(helpers.REPO / 'notebooks')}}).execute()
  outputs = [o for c in notebook.cells if c.cell_type == 'code' for o in c.outputs]
  text = '\n'.join(o.get('text', '') for o in outputs)
  assert 'zeroshot_onevision' in text and 'frames: 4' in text
  for setting in ('base ', '+LRA ', '+LRA +TAS '):
    assert f'\n{setting}' in f'\n{text}'
  assert 'before LRA' in text and 'after LRA' in text
  assert 'equals the +LRA +TAS spatial map: True' in text
  images = [o for o in outputs if 'image/png' in o.get('data', {})]
  assert len(images) == 2                                # the heat maps and the tube figure
  assert (tmp_path / 'grounding.png').stat().st_size > 10_000
