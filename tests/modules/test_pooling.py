"""Query-guided token pooling (R²-Tuning's, shared with SDST) against a per-clip NumPy loop."""
import numpy as np

from jaxvg.modules.pooling import query_guided_pooling


def _reference(query_keys, token_keys, tokens, query, query_mask):
  b, t = tokens.shape[:2]
  out = np.zeros((b, t, tokens.shape[-1]), np.float64)
  for i in range(b):
    valid = np.flatnonzero(query_mask[i])
    for j in range(t):
      if not valid.size:
        continue
      pooled = []
      for l in valid:
        logits = token_keys[i, j] @ query_keys[i, l] / np.sqrt(query_keys.shape[-1])
        att = np.exp(logits - logits.max())
        pooled.append((att / att.sum()) @ tokens[i, j] + query[i, l])
      out[i, j] = np.max(pooled, axis=0)
  return out


def test_query_guided_pooling_matches_a_loop():
  """Softmax over each clip's tokens per query token, plus that token, max over the valid query
  tokens; a sample without valid query tokens pools to 0; no mask = every token valid."""
  rng = np.random.default_rng(0)
  b, t, p, l, c = 3, 4, 5, 6, 8
  query_keys, query = rng.normal(size=(2, b, l, c)).astype(np.float32)
  token_keys, tokens = rng.normal(size=(2, b, t, p, c)).astype(np.float32)
  query_mask = np.arange(l)[None] < np.array([[6], [2], [0]])
  got = query_guided_pooling(query_keys, token_keys, tokens, query, query_mask)
  np.testing.assert_allclose(got, _reference(query_keys, token_keys, tokens, query, query_mask),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(got[2], 0.0)
  np.testing.assert_allclose(
      query_guided_pooling(query_keys, token_keys, tokens, query, None),
      _reference(query_keys, token_keys, tokens, query, np.ones((b, l), bool)), rtol=1e-5,
      atol=1e-5)
