"""The swapped-query baseline: does a grounding model read its query at all?

Every evaluation query is replaced by the query of a sample from *another* video, while the
videos and the ground truth stay as they are. A model that ignores the query (one that has only
learned where events tend to happen, or what looks eventful) scores the same on both; the gap
between the true-query and the swapped-query scores is the part of the score the query earns.

    swapped = swap_queries(loader.records)
    true = evaluate_split(run, params, make_loader(config, 'val', train=False))
    blind = evaluate_split(run, params, make_loader(config, 'val', train=False, records=swapped))
    print(format_gap(true, blind, ('MR-full-R1@0.5', 'MR-full-mAP')))

Records are any dataclasses or dicts with a `vid` and the query fields (default `query`, the text
the frames path tokenises, and `feature_key`, the key of cached query features); everything
else, ground truth and ids included, is kept.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence, TypeVar

Record = TypeVar('Record')
QUERY_FIELDS = ('query', 'feature_key')


def _get(record: Any, name: str) -> Any:
  return record[name] if isinstance(record, Mapping) else getattr(record, name)


def donors(vids: Sequence[Any]) -> list[int]:
  """For each position, the position whose query it receives: always another video's.

  Deterministic and balanced: position i takes i + n//2 (mod n), the farthest point of the
  list, moving forward past samples of its own video; a contiguous list of per-video samples
  therefore gets queries from a distant part of the list.

  Raises:
    ValueError: fewer than two distinct videos (no other video to take a query from).
  """
  n = len(vids)
  if len(set(vids)) < 2:
    raise ValueError(f'swapping queries needs samples of at least two videos, got {n} samples '
                     f'of {len(set(vids))}')
  out = []
  for i, vid in enumerate(vids):
    j = (i + n // 2) % n
    while vids[j] == vid:
      j = (j + 1) % n
    out.append(j)
  return out


def swap_queries(records: Sequence[Record], fields: Sequence[str] = QUERY_FIELDS
                 ) -> list[Record]:
  """Copies of `records`, each with the `fields` (those it has) of another video's record."""
  sources = donors([_get(r, 'vid') for r in records])
  out = []
  for record, j in zip(records, sources):
    donor = records[j]
    if isinstance(record, Mapping):
      out.append({**record, **{f: donor[f] for f in fields if f in record}})
    else:
      names = {f.name for f in dataclasses.fields(record)}
      out.append(dataclasses.replace(
          record, **{f: getattr(donor, f) for f in fields if f in names}))
  return out


def format_gap(true_metrics: Mapping[str, float], swapped_metrics: Mapping[str, float],
               names: Sequence[str]) -> str:
  """One line per metric: 'name: true T   swapped S   gap G' (points)."""
  lines = []
  for name in names:
    t, s = true_metrics[name], swapped_metrics[name]
    lines.append(f'{name}: true queries {t:.2f}   swapped queries {s:.2f}   gap {t - s:+.2f}')
  return '\n'.join(lines)
