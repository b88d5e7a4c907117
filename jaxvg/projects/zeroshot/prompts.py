"""Prompts of the zero-shot grounder: LLaVA-NeXT chat templates, yes/no questions, DSTH sub-queries.

The STVG code builds `[text before <image> ; visual tokens ; text after]` with the LLaVA-NeXT
conversation templates (system prompt included) and tokenises the two text chunks separately
(`tokenizer_image_token`: special tokens such as BOS only on the first chunk).
"""
from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np

# The code's contrast prompt (the paper writes "Describe this video in details.").
CAPTION_PROMPT = 'please describe this video'

_TEMPLATES = {
    # conv_qwen (qwen_1_5): CHATML with the system prompt.
    'qwen_1_5': ('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n',
                 '\n{question}<|im_end|>\n<|im_start|>assistant\n'),
    # conv_vicuna_v1: SeparatorStyle.TWO, "USER: <image>\n{q} ASSISTANT:".
    'vicuna_v1': ('A chat between a curious user and an artificial intelligence assistant. The '
                  "assistant gives helpful, detailed, and polite answers to the user's questions. "
                  'USER: ', '\n{question} ASSISTANT:'),
}


def chat_prompt(template: str, question: str) -> tuple[str, str]:
  """(text before the visual block, text after it) of a LLaVA-NeXT conversation template."""
  if template not in _TEMPLATES:
    raise ValueError(f'unknown template {template!r}; known: {sorted(_TEMPLATES)}')
  pre, post = _TEMPLATES[template]
  return pre, post.format(question=question)


def yes_no_question(sentence: str) -> str:
  """The code's question: f"Is there {sentence without its final period} in this video?"."""
  return f"Is there {sentence.strip('.').strip()} in this video?"


def load_tokenizer(folder: str | pathlib.Path):
  """The folder's `tokenizer.json` through the `tokenizers` package (no transformers)."""
  import tokenizers  # a runtime dependency only of the zero-shot system
  path = pathlib.Path(folder) / 'tokenizer.json'
  if not path.exists():
    raise FileNotFoundError(f'{path}: no tokenizer.json in the model folder')
  return tokenizers.Tokenizer.from_file(str(path))


def token_id(tokenizer, token: str) -> int:
  """Vocabulary id of one token (e.g. 'yes'), looked up, never hard-coded."""
  idx = tokenizer.token_to_id(token)
  if idx is None:
    raise KeyError(f'token {token!r} is not in the tokenizer vocabulary')
  return idx


def encode_prompt(tokenizer, template: str, question: str) -> tuple[list[int], list[int]]:
  """(ids before the visual block, ids after it), as `tokenizer_image_token` splits them."""
  pre, post = chat_prompt(template, question)
  return (tokenizer.encode(pre).ids, tokenizer.encode(post, add_special_tokens=False).ids)


def pack_prompts(tokenizer, template: str, questions: list[str], num_visual: int, pad_id: int,
                 bucket: int) -> tuple[np.ndarray, np.ndarray, int]:
  """Questions sharing one video -> right-padded ids (Q, bucket), lengths (Q,), visual start.

  The visual block holds `pad_id` placeholders (the model writes the visual tokens there);
  padding to a fixed bucket keeps one compiled program for every question length.
  """
  encoded = [encode_prompt(tokenizer, template, q) for q in questions]
  pre = encoded[0][0]
  if any(e[0] != pre for e in encoded):
    raise ValueError('questions of one video must share the text before the visual block')
  rows = [pre + [pad_id] * num_visual + post for _, post in encoded]
  longest = max(len(r) for r in rows)
  if longest > bucket:
    raise ValueError(f'prompt of {longest} tokens exceeds the bucket of {bucket}; raise '
                     'config.prompt_bucket')
  ids = np.full((len(rows), bucket), pad_id, np.int32)
  for i, r in enumerate(rows):
    ids[i, :len(r)] = r
  return ids, np.array([len(r) for r in rows], np.int32), len(pre)


def load_decompositions(path: str | pathlib.Path) -> dict[str, dict[str, Any]]:
  """The released `gpt4_decompose_attr_action.json`: {video: {'decompose_attribute': [...],
  'decompose_action': [...]}}."""
  path = pathlib.Path(path)
  try:
    data = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f'{path}:{e.lineno}: not JSON ({e.msg})') from e
  for video, entry in data.items():
    for field in ('decompose_attribute', 'decompose_action'):
      if not isinstance(entry.get(field), list):
        raise ValueError(f'{path}: {video}: field {field!r} missing or not a list')
  return data


def sub_queries(sentence: str, entry: dict[str, Any] | None) -> tuple[str, str]:
  """(attribute question, action question) as `prepare_instructions` builds them.

  The last sentence of each list wins; a failed decomposition (it contains the caption prompt)
  or a missing entry falls back to the full query.
  """
  full = yes_no_question(sentence)
  out = []
  for field in ('decompose_attribute', 'decompose_action'):
    question = full
    for sent in (entry or {}).get(field, []):
      question = full if CAPTION_PROMPT in sent else yes_no_question(sent)
    out.append(question)
  return out[0], out[1]
