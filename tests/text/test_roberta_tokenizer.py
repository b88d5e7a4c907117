"""The RoBERTa tokenizer against Hugging Face `RobertaTokenizerFast` (fixtures made by
tests/fixtures/roberta_tokenizer_fixtures.py), from both folder layouts."""
import json
import pathlib
import pickle
import shutil

import numpy as np
import pytest

from jaxvg.text import roberta_tokenizer

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / 'fixtures'
FOLDER = FIXTURES / 'roberta_tokenizer'
EXPECTED = json.loads((FIXTURES / 'roberta_tokenizer_ids.json').read_text())


@pytest.fixture(params=['tokenizer.json', 'vocab+merges'])
def folder(request, tmp_path):
  if request.param == 'tokenizer.json':
    return FOLDER
  for name in ('vocab.json', 'merges.txt'):
    shutil.copy(FOLDER / name, tmp_path / name)
  return tmp_path


@pytest.mark.parametrize('max_length', sorted(EXPECTED['truncated'], key=int))
def test_truncated_and_padded_ids_match_transformers(folder, max_length):
  tokenizer = roberta_tokenizer.RobertaTokenizer.from_folder(folder, int(max_length))
  ids, mask = tokenizer(EXPECTED['queries'])
  expected = EXPECTED['truncated'][max_length]
  np.testing.assert_array_equal(ids, expected['ids'])
  np.testing.assert_array_equal(mask, np.asarray(expected['mask'], bool))
  assert tokenizer.vocab_size == EXPECTED['vocab_size'] and tokenizer.pad_id == 1


def test_official_longest_padding_matches_transformers(folder):
  tokenizer = roberta_tokenizer.RobertaTokenizer.from_folder(folder)
  ids, mask = tokenizer(EXPECTED['queries'])
  np.testing.assert_array_equal(ids, EXPECTED['longest']['ids'])
  np.testing.assert_array_equal(mask, np.asarray(EXPECTED['longest']['mask'], bool))
  first = EXPECTED['queries'][0]
  np.testing.assert_array_equal(tokenizer.encode(first), ids[0][mask[0]])


def test_pickles_and_names_a_folder_without_files(tmp_path):
  tokenizer = pickle.loads(pickle.dumps(roberta_tokenizer.RobertaTokenizer.from_folder(FOLDER, 12)))
  np.testing.assert_array_equal(tokenizer(EXPECTED['queries'])[0],
                                EXPECTED['truncated']['12']['ids'])
  with pytest.raises(FileNotFoundError, match=str(tmp_path)):
    roberta_tokenizer.RobertaTokenizer.from_folder(tmp_path)


def test_trained_folder_is_deterministic_and_loads(tmp_path):
  texts = ['the red circle that moves left', 'the blue square that moves up'] * 4
  for name in ('a', 'b'):
    roberta_tokenizer.write_bpe_folder(texts, tmp_path / name, vocab_size=300)
  for file in ('vocab.json', 'merges.txt', 'tokenizer.json'):
    assert (tmp_path / 'a' / file).read_bytes() == (tmp_path / 'b' / file).read_bytes()
  tokenizer = roberta_tokenizer.RobertaTokenizer.from_folder(tmp_path / 'a', 10)
  ids = tokenizer.encode('the red circle that moves up')
  assert ids[0] == 0 and ids[-1] == 2 and len(ids) == 8   # every word is one token
