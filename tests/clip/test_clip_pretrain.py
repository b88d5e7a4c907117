"""The tiny CLIP pretrained on the synthetic renderer: learns, is deterministic, is cached."""
import jax
import numpy as np

from jaxvg import clip
from jaxvg import params_file
from jaxvg.clip import pretrain


def _held_out_loss(model, params) -> float:
  frames, tokens = pretrain.scene_batch(seed=1, step=0, batch_size=16)
  return float(pretrain.contrastive_loss(model, params, frames, tokens)[0])


def test_contrastive_pretraining_learns_and_is_deterministic():
  model, params, _ = pretrain.pretrain('tiny', steps=20, batch_size=16)
  _, again, _ = pretrain.pretrain('tiny', steps=20, batch_size=16)
  initial = jax.tree.map(np.asarray, clip.init_random('tiny')[1])
  # Scenes it never saw: the trained towers match frames to their captions better than chance
  # (log 16 = 2.77) and than the random towers it started from.
  assert _held_out_loss(model, params) < min(_held_out_loss(model, initial) - 0.25,
                                             np.log(16) - 0.1)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_scene_batches_are_seeded_and_captions_fit_the_text_length():
  frames, tokens = pretrain.scene_batch(seed=0, step=3, batch_size=8)
  frames2, tokens2 = pretrain.scene_batch(seed=0, step=3, batch_size=8)
  np.testing.assert_array_equal(frames, frames2)
  np.testing.assert_array_equal(tokens, tokens2)
  assert frames.shape == (8, 224, 224, 3) and tokens.shape == (8, pretrain.TEXT_LENGTH)
  assert (tokens.argmax(-1) < pretrain.TEXT_LENGTH - 1).all()     # EOT inside, padding after
  assert not np.array_equal(frames, pretrain.scene_batch(seed=0, step=4, batch_size=8)[0])


def test_load_reads_the_cache_written_once(tmp_path, monkeypatch):
  monkeypatch.setenv('JAXVG_CACHE', str(tmp_path))
  _, params = clip.init_random('tiny', seed=3)
  path = pretrain.cache_path('tiny')
  params_file.save_params(params, path)
  model, loaded = clip.load('synthetic:tiny')                      # no training: cached
  assert model.arch.name == 'tiny'
  flat, tree = jax.tree.flatten(params)
  loaded_flat, loaded_tree = jax.tree.flatten(loaded)
  assert tree == loaded_tree
  for a, b in zip(flat, loaded_flat):
    np.testing.assert_array_equal(a, b)
  assert [p.name for p in tmp_path.rglob('*') if p.is_file()] == [path.split('/')[-1]]
