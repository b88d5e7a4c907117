"""RoBERTa's byte-level BPE tokenizer through the `tokenizers` package (no `transformers`).

Reads a weight folder as Hugging Face writes it: `tokenizer.json`, or the older `vocab.json` +
`merges.txt` pair, which is assembled as `RobertaTokenizerFast` converts it (byte-level
pre-tokenizer without a prefix space, `<s> … </s>` around the text, `<mask>` stripping the space
on its left). Ids are those of `RobertaTokenizerFast(texts, truncation=True,
max_length=L, padding='max_length')`, or of the official CG-STVG call (`padding='longest'`, no
truncation) without a length.

`write_bpe_folder` trains such a folder on a corpus (the embedded benchmarks' captions).
"""
from __future__ import annotations

import json
import os
from typing import Iterable, Sequence

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

BOS, PAD, EOS, UNK, MASK = '<s>', '<pad>', '</s>', '<unk>', '<mask>'
SPECIAL_TOKENS = (BOS, PAD, EOS, UNK, MASK)   # RoBERTa's ids 0..3 (`<mask>` last in roberta-base)


def _byte_level_roberta(model: models.Model) -> tokenizers.Tokenizer:
  """The pipeline HF's `RobertaConverter` builds around a BPE model."""
  tokenizer = tokenizers.Tokenizer(model)
  tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tokenizer.decoder = decoders.ByteLevel()
  return tokenizer


def _add_specials(tokenizer: tokenizers.Tokenizer) -> None:
  tokenizer.add_special_tokens([tokenizers.AddedToken(t, lstrip=t == MASK, normalized=False)
                                for t in SPECIAL_TOKENS])
  tokenizer.post_processor = processors.RobertaProcessing(
      (EOS, _token_id(tokenizer, EOS)), (BOS, _token_id(tokenizer, BOS)),
      trim_offsets=True, add_prefix_space=False)


def _token_id(tokenizer: tokenizers.Tokenizer, token: str, where: str = 'the tokenizer') -> int:
  index = tokenizer.token_to_id(token)
  if index is None:
    raise ValueError(f'{where}: no {token!r} token in the vocabulary')
  return index


def load_folder(folder: str | os.PathLike) -> tokenizers.Tokenizer:
  """The folder's `tokenizer.json`, else its `vocab.json` + `merges.txt` (RoBERTa pipeline)."""
  folder = os.fspath(folder)
  path = os.path.join(folder, 'tokenizer.json')
  if os.path.exists(path):
    return tokenizers.Tokenizer.from_file(path)
  vocab, merges = os.path.join(folder, 'vocab.json'), os.path.join(folder, 'merges.txt')
  if not (os.path.exists(vocab) and os.path.exists(merges)):
    raise FileNotFoundError(f'{folder}: no tokenizer.json, nor vocab.json + merges.txt')
  tokenizer = _byte_level_roberta(models.BPE.from_file(vocab, merges))
  _add_specials(tokenizer)
  return tokenizer


class RobertaTokenizer:
  """Texts -> (ids (N, L) int32, mask (N, L) bool): `<s> … </s>` truncated to `max_length`
  tokens and padded to it with `<pad>`; without `max_length`, padded to the longest text.
  Picklable (Grain workers receive it)."""

  def __init__(self, tokenizer: tokenizers.Tokenizer, max_length: int | None = None,
               where: str = 'the tokenizer'):
    self.pad_id = _token_id(tokenizer, PAD, where)
    self.max_length = max_length
    self._tokenizer = tokenizers.Tokenizer.from_str(tokenizer.to_str())  # our own settings
    self._tokenizer.no_truncation()
    if max_length is not None:
      if max_length < 2:
        raise ValueError(f'max_length {max_length} leaves no room for <s> and </s>')
      self._tokenizer.enable_truncation(max_length)
    self._tokenizer.enable_padding(pad_id=self.pad_id, pad_token=PAD, length=max_length)

  @classmethod
  def from_folder(cls, folder: str | os.PathLike, max_length: int | None = None
                  ) -> 'RobertaTokenizer':
    return cls(load_folder(folder), max_length, where=os.fspath(folder))

  @property
  def vocab_size(self) -> int:
    return self._tokenizer.get_vocab_size(with_added_tokens=True)

  def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(texts, str):
      raise TypeError('pass a sequence of texts, not one string')
    encodings = self._tokenizer.encode_batch(list(texts))
    length = self.max_length or max((len(e.ids) for e in encodings), default=2)
    ids = np.full((len(encodings), length), self.pad_id, np.int32)
    mask = np.zeros((len(encodings), length), bool)
    for i, e in enumerate(encodings):
      ids[i] = e.ids
      mask[i] = e.attention_mask
    return ids, mask

  def encode(self, text: str) -> np.ndarray:
    """One text's ids, unpadded (truncated to `max_length`)."""
    ids, mask = self([text])
    return ids[0][mask[0]]


def write_bpe_folder(texts: Iterable[str], folder: str | os.PathLike, vocab_size: int) -> None:
  """Trains a RoBERTa-style byte-level BPE on `texts` (deterministic for a given corpus and
  `tokenizers` version) and writes `vocab.json`, `merges.txt` and `tokenizer.json` into
  `folder`; the special tokens take ids 0-4."""
  tokenizer = _byte_level_roberta(models.BPE())
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                show_progress=False)
  tokenizer.train_from_iterator(texts, trainer)
  _add_specials(tokenizer)
  folder = os.fspath(folder)
  os.makedirs(folder, exist_ok=True)
  tokenizer.model.save(folder)
  tokenizer.save(os.path.join(folder, 'tokenizer.json'))
  with open(os.path.join(folder, 'special_tokens_map.json'), 'w') as f:
    json.dump({'bos_token': BOS, 'eos_token': EOS, 'unk_token': UNK, 'sep_token': EOS,
               'pad_token': PAD, 'cls_token': BOS, 'mask_token': MASK}, f)
