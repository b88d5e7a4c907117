"""notebooks/stvg_zeroshot.ipynb runs end to end on the CPU (JAXVG_NOTEBOOK_CI=1: the tiny random
backend): three settings grounded, the heat maps and the tube drawn, LRA raising its margin."""
import pytest

import predictor_helpers as helpers

NOTEBOOK = 'stvg_zeroshot.ipynb'


@pytest.mark.notebook
def test_zeroshot_notebook_runs_end_to_end(cache_dir, tmp_path, monkeypatch):
  pytest.importorskip('tokenizers', reason='pinned in requirements.txt (pip install -r ...)')
  outputs, text = helpers.run_notebook(NOTEBOOK, monkeypatch, cache_dir=cache_dir,
                                        workdir=tmp_path, timeout=600)
  assert 'zeroshot_onevision' in text and 'frames: 4' in text
  for setting in ('base ', '+LRA ', '+LRA +TAS '):
    assert f'\n{setting}' in f'\n{text}'
  assert 'before LRA' in text and 'after LRA' in text
  assert 'equals the +LRA +TAS spatial map: True' in text
  images = [o for o in outputs if 'image/png' in o.get('data', {})]
  assert len(images) == 2                                # the heat maps and the tube figure
  assert (tmp_path / 'grounding.png').stat().st_size > 10_000
