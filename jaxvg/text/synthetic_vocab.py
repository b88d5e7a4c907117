"""The tokenizer of the embedded synthetic tube benchmark: a RoBERTa-style byte-level BPE trained
on every caption its generator can write ('the <colour> <shape> that moves <action>', which
includes the left/right swaps of the flip augmentation), so each word is one token. Written on
first use beside the benchmark (`<root>/roberta-bpe-v<VERSION>/`), identically by every process.
"""
from __future__ import annotations

import itertools
import os

from jaxvg.data import synthetic_tubes
from jaxvg.data.cache import build_once
from jaxvg.text.roberta_tokenizer import write_bpe_folder

VERSION = 1
VOCAB_SIZE = 320     # 256 bytes + 5 special tokens + the merges that make each word one token


def captions() -> list[str]:
  return [synthetic_tubes.query_text({'colour': c, 'shape': s, 'action': a})
          for c, s, a in itertools.product(synthetic_tubes.COLOURS, synthetic_tubes.SHAPES,
                                           synthetic_tubes.ACTIONS)]


def ensure_synthetic_tube_tokenizer(root: str = '') -> str:
  """The tokenizer folder (trained if missing) under the benchmark's root; returns its path."""
  folder = os.path.join(root or synthetic_tubes.default_root(), f'roberta-bpe-v{VERSION}')
  build_once(folder, 'tokenizer.json',
             lambda tmp: write_bpe_folder(captions(), tmp, VOCAB_SIZE))
  return folder
