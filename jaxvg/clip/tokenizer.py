"""OpenAI CLIP's byte-level BPE tokenizer (same ids as `clip.tokenize`), without torch.

The merges file `bpe_simple_vocab_16e6.txt.gz` is OpenAI's (MIT licence beside it).
"""
from __future__ import annotations

import functools
import gzip
import html
import pathlib
from typing import Sequence

import ftfy
import numpy as np
import regex

VOCAB_PATH = pathlib.Path(__file__).with_name('bpe_simple_vocab_16e6.txt.gz')
CONTEXT_LENGTH = 77
SOT_TOKEN = '<|startoftext|>'
EOT_TOKEN = '<|endoftext|>'
_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE)


@functools.lru_cache()
def bytes_to_unicode() -> dict[int, str]:
  """Byte -> printable unicode char, so BPE never sees whitespace/control bytes (GPT-2 scheme)."""
  bs = (list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1))
        + list(range(ord('®'), ord('ÿ') + 1)))
  cs = bs[:]
  n = 0
  for b in range(256):
    if b not in bs:
      bs.append(b)
      cs.append(256 + n)
      n += 1
  return dict(zip(bs, map(chr, cs)))


def _clean(text: str) -> str:
  text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
  return regex.sub(r'\s+', ' ', text).strip()


class SimpleTokenizer:
  """Text -> BPE ids over the 49408-entry CLIP vocabulary."""

  def __init__(self, vocab_path: str | pathlib.Path = VOCAB_PATH):
    self.byte_encoder = bytes_to_unicode()
    merges = gzip.open(vocab_path).read().decode('utf-8').split('\n')
    merges = [tuple(m.split()) for m in merges[1:49152 - 256 - 2 + 1]]
    vocab = list(self.byte_encoder.values())
    vocab += [v + '</w>' for v in vocab] + [''.join(m) for m in merges] + [SOT_TOKEN, EOT_TOKEN]
    self.encoder = {token: i for i, token in enumerate(vocab)}
    self.decoder = {i: token for token, i in self.encoder.items()}
    self.bpe_ranks = {merge: i for i, merge in enumerate(merges)}
    self.sot_id = self.encoder[SOT_TOKEN]
    self.eot_id = self.encoder[EOT_TOKEN]
    self._cache = {SOT_TOKEN: SOT_TOKEN, EOT_TOKEN: EOT_TOKEN}

  def bpe(self, token: str) -> str:
    """Merges the characters of one pre-token by rank; returns space-separated symbols."""
    if token in self._cache:
      return self._cache[token]
    word = tuple(token[:-1]) + (token[-1] + '</w>',)
    while len(word) > 1:
      pairs = set(zip(word[:-1], word[1:]))
      bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float('inf')))
      if bigram not in self.bpe_ranks:
        break
      merged, i = [], 0
      while i < len(word):
        if i < len(word) - 1 and (word[i], word[i + 1]) == bigram:
          merged.append(word[i] + word[i + 1])
          i += 2
        else:
          merged.append(word[i])
          i += 1
      word = tuple(merged)
    self._cache[token] = ' '.join(word)
    return self._cache[token]

  def encode(self, text: str) -> list[int]:
    """BPE ids of a text, without SOT/EOT (lower-cased, ftfy-fixed, whitespace-collapsed)."""
    ids = []
    for token in _PATTERN.findall(_clean(text).lower()):
      token = ''.join(self.byte_encoder[b] for b in token.encode('utf-8'))
      ids.extend(self.encoder[t] for t in self.bpe(token).split(' '))
    return ids

  def decode(self, ids: Sequence[int]) -> str:
    byte_decoder = {v: k for k, v in self.byte_encoder.items()}
    text = ''.join(self.decoder[int(i)] for i in ids)
    return bytearray(byte_decoder[c] for c in text).decode('utf-8', errors='replace').replace(
        '</w>', ' ')


@functools.lru_cache(maxsize=1)
def default_tokenizer() -> SimpleTokenizer:
  return SimpleTokenizer()


def tokenize(texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH,
             truncate: bool = True) -> np.ndarray:
  """Texts -> (N, context_length) int32 ids: SOT, BPE ids, EOT, zero padding.

  With `truncate` (as R²-Tuning calls it) a long text keeps its first context_length - 1 tokens
  and EOT is put in the last position; otherwise a long text raises.
  """
  if isinstance(texts, str):
    texts = [texts]
  tok = default_tokenizer()
  result = np.zeros((len(texts), context_length), np.int32)
  for i, text in enumerate(texts):
    ids = [tok.sot_id] + tok.encode(text) + [tok.eot_id]
    if len(ids) > context_length:
      if not truncate:
        raise ValueError(f'text {i} ({text[:40]!r}...) has {len(ids)} tokens > context '
                         f'{context_length}')
      ids = ids[:context_length - 1] + [tok.eot_id]
    result[i, :len(ids)] = ids
  return result
