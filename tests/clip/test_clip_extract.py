"""Feature extractor: equals the towers run directly, official layout, resumable."""
import json
import os

import jax
import numpy as np
import pytest

import jaxvg.clip
from jaxvg.clip import extract
from jaxvg.modules.clip import encode_text_layers, encode_video_layers
from jaxvg.prepare import features


@pytest.fixture(scope='module')
def tiny():
  return jaxvg.clip.init_random('tiny', seed=0)


def test_cache_dir_names():
  assert extract.cache_dir_name('ViT-B/32', 'vid', 4) == 'clip_b32_vid_k4'
  assert extract.cache_dir_name('ViT-L/14-336', 'txt', 2) == 'clip_l14_336_txt_k2'


def test_videos_equal_the_towers_and_resume(tiny, tmp_path):
  model, params = tiny
  rng = np.random.default_rng(0)
  # 5 + 11 + 3 frames over batches of 8: videos straddle batches, the last batch is padded.
  videos = {f'v{i}': rng.integers(0, 256, (t, 224, 224, 3), dtype=np.uint8)
            for i, t in enumerate((5, 11, 3))}
  encoder = extract.video_encoder(model, params, num_layers=3, batch_size=8)
  out = tmp_path / 'clip_tiny_vid_k3'
  assert extract.extract_videos(list(videos), videos.__getitem__, str(out), encoder) == 3
  direct = jax.jit(lambda p, f: encode_video_layers(model, p, f, 3))
  for vid, frames in videos.items():
    saved = np.load(out / f'{vid}.npy')
    assert saved.shape == (len(frames), 3, 50, 64) and saved.dtype == np.float16
    np.testing.assert_allclose(saved, direct(params, frames).astype(np.float16), rtol=2e-3,
                               atol=2e-3)
  os.remove(out / 'v1.npy')
  read = []
  assert extract.extract_videos(list(videos), lambda v: read.append(v) or videos[v], str(out),
                                encoder) == 1
  assert read == ['v1'] and sorted(os.listdir(out)) == ['v0.npy', 'v1.npy', 'v2.npy']


def test_queries_keep_the_nonzero_tokens(tiny, tmp_path):
  model, params = tiny
  anno = tmp_path / 'anno.jsonl'
  rows = [{'qid': 7, 'query': 'a man opens a door'}, {'qid': 'x', 'query': 'Dogs run!'}]
  anno.write_text('\n'.join(json.dumps(r) for r in rows) + '\n')
  assert features.main(['--clip', 'random', '--arch', 'tiny', '--annotations', str(anno),
                        '--out', str(tmp_path), '--layers', '2', '--batch-size', '8']) == 0
  tokens = jaxvg.clip.tokenize([r['query'] for r in rows])
  direct = np.asarray(jax.jit(lambda p, t: encode_text_layers(model, p, t, 2))(params, tokens))
  for row, ids, feats in zip(rows, tokens, direct):
    saved = np.load(tmp_path / 'clip_tiny_txt_k2' / f"{row['qid']}.npy")
    length = int((ids != 0).sum())
    assert saved.shape == (length, 2, 64)
    np.testing.assert_allclose(saved, feats[:length].astype(np.float16), rtol=2e-3, atol=2e-3)


def test_array_record_format_round_trips(tiny, tmp_path):
  model, params = tiny
  encoder = extract.text_encoder(model, params, num_layers=1, batch_size=8)
  queries = [('q1', 'hello world'), ('q2', 'a cat')]
  assert extract.extract_queries(queries, str(tmp_path), encoder, 'array_record') == 2
  assert extract.extract_queries(queries + [('q3', 'more')], str(tmp_path), encoder,
                                 'array_record') == 1
  parts = sorted(p for p in os.listdir(tmp_path) if p.endswith('.array_record'))
  assert parts == ['part-00000.array_record', 'part-00001.array_record']
  first = extract.read_array_record(str(tmp_path / parts[0]))
  assert sorted(first) == ['q1', 'q2'] and first['q1'].shape == (4, 1, 64)


def test_bad_annotation_line_is_named(tmp_path):
  anno = tmp_path / 'a.jsonl'
  anno.write_text('{"qid": 1, "query": "ok"}\n{"qid": 2}\n')
  with pytest.raises(ValueError, match=r'a\.jsonl:2: missing field .query.'):
    features.read_queries([str(anno)])
