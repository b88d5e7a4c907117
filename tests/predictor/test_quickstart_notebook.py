"""notebooks/quickstart.ipynb runs end to end on the CPU (JAXVG_NOTEBOOK_CI=1: the tiny variant)."""
import pytest

import predictor_helpers as helpers

NOTEBOOK = 'quickstart.ipynb'


@pytest.mark.notebook
def test_quickstart_runs_end_to_end(cache_dir, tmp_path, monkeypatch):
  workdir = tmp_path / 'run'
  outputs, text = helpers.run_notebook(NOTEBOOK, monkeypatch, cache_dir=cache_dir,
                                        workdir=workdir, timeout=600)
  assert 'config: configs/r2tuning/synthetic.py:tiny' in text
  assert "mesh: {'data':" in text
  assert 'R²-Tuning ' in text and 'SDST ' in text            # the SDST comparison table
  assert "query 0: 'a red circle appears'" in text and "query 1: 'the blue square grows'" in text
  images = [o for o in outputs if 'image/png' in o.get('data', {})]
  assert len(images) == 1
  assert (workdir / 'shapes.png').stat().st_size > 10_000
  assert (workdir / 'checkpoints' / 'best').is_dir()
