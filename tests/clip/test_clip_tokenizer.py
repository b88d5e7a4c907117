"""BPE tokenizer against ids from the official `clip.tokenize(..., truncate=True)`."""
import json
import pathlib

import numpy as np
import pytest

from jaxvg.clip import tokenize
from jaxvg.clip.tokenizer import default_tokenizer

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / 'fixtures'
CASES = json.loads((FIXTURES / 'clip_tokens.json').read_text())


def test_ids_equal_the_official_tokenizer():
  ids = tokenize([c['text'] for c in CASES])
  assert ids.shape == (len(CASES), 77) and ids.dtype == np.int32
  for row, case in zip(ids, CASES):
    assert row[row != 0].tolist() == case['ids'], case['text']
    assert not row[len(case['ids']):].any()


def test_truncation_keeps_eot_last():
  long_case = max(CASES, key=lambda c: len(c['text']))
  row = tokenize(long_case['text'])[0]
  assert row[0] == 49406 and row[-1] == 49407 and (row != 0).all()
  with pytest.raises(ValueError, match='context 77'):
    tokenize(long_case['text'], truncate=False)


def test_decode_inverts_encode():
  tok = default_tokenizer()
  assert tok.decode(tok.encode('A chef slices onions!')).strip() == 'a chef slices onions !'
