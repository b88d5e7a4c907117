"""Every notebook is committed without outputs (they run in CI, see the test_*_notebook.py files)."""
import pytest

import predictor_helpers as helpers


@pytest.mark.parametrize('name', sorted(p.name for p in (helpers.REPO / 'notebooks').glob('*.ipynb')))
def test_committed_notebook_has_no_outputs(name):
  code = helpers.notebook_code_cells(name)
  assert code and all(not c.outputs and c.execution_count is None for c in code)
