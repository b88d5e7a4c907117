"""notebooks/stvg_nst.ipynb runs end to end on the CPU (JAXVG_NOTEBOOK_CI=1: the tiny benchmark):
a base, NST and LoRA trained, a video degraded, the tubes drawn, the mixed-quality table."""
import nbformat
import pytest

import predictor_helpers as helpers

NOTEBOOK = helpers.REPO / 'notebooks' / 'stvg_nst.ipynb'


def test_committed_notebook_has_no_outputs():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  code = [c for c in notebook.cells if c.cell_type == 'code']
  assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.notebook
def test_stvg_nst_runs_end_to_end(cache_dir, tmp_path, monkeypatch):
  from nbclient import NotebookClient
  workdir = tmp_path / 'run'
  monkeypatch.setenv('JAXVG_NOTEBOOK_CI', '1')
  monkeypatch.setenv('JAXVG_NOTEBOOK_WORKDIR', str(workdir))
  monkeypatch.setenv('JAXVG_CACHE', str(cache_dir))      # the session's synthetic data
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  NotebookClient(notebook, timeout=1200, kernel_name='python3',
                 resources={'metadata': {'path': str(helpers.REPO / 'notebooks')}}).execute()
  outputs = [o for c in notebook.cells if c.cell_type == 'code' for o in c.outputs]
  text = '\n'.join(o.get('text', '') for o in outputs)
  assert 'size: tiny' in text and 'nst trained' in text and 'lora trained' in text
  assert 'LQ: motion_blur, severity 4' in text
  assert 'NST on HQ == frozen base on HQ:' in text
  for method in ('frozen', 'nst', 'lora'):
    assert f'{method}:\n  hq' in text
  assert 'HQ(tuned) - HQ(frozen): m_tIoU +0.00  m_vIoU +0.00' in text    # the frozen base
  images = [o for o in outputs if 'image/png' in o.get('data', {})]
  assert len(images) == 1
  assert (workdir / 'nst_tubes.png').stat().st_size > 10_000
