"""A small CLIP pretrained contrastively on the synthetic renderer's frames and captions.

Real CLIP arrives knowing that the word 'red' goes with red pixels; that alignment is what lets
R²-Tuning ground a query with a few epochs of adapter training. A random-weight CLIP gives the
text nothing to align, and on the synthetic benchmark the adapter then learns where events tend
to happen instead of reading the query. This module gives the embedded benchmark the same
starting point as real use: the 'tiny' CLIP trained with the CLIP objective (symmetric InfoNCE,
learned temperature) on still frames of random scenes drawn by the benchmark's renderer, each
paired with a caption of what it shows ('big red circle left, blue square middle'). The scenes
are not the benchmark's videos and the captions never describe events.

Deterministic (seeded scenes, CPU XLA) and cached on first use as
`<cache>/synthetic/clip-<arch>-v<VERSION>.safetensors` (written to a temporary file renamed into
place). Reached through `jaxvg.clip.load('synthetic:tiny')`, so a config selects it with
`config.clip.path = 'synthetic:tiny'`.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvg.clip.tokenizer import tokenize
from jaxvg.params_file import load_params, save_params
from jaxvg.modules.clip import CLIP, CLIPArch, get_arch, init_params, normalize_frames

VERSION = 1
STEPS = 200
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
WARMUP_STEPS = 20
WEIGHT_DECAY = 0.05
TEXT_LENGTH = 24              # captions are at most ~20 tokens; the causal tower ignores the rest
MAX_LOGIT_SCALE = float(np.log(100.0))


def cache_path(arch: str, root: str = '') -> str:
  from jaxvg.data import synthetic
  root = root or synthetic.default_root()
  return os.path.join(root, f'clip-{arch.replace("/", "-")}-v{VERSION}.safetensors')


def scene_batch(seed: int, step: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
  """(frames (B, 224, 224, 3) uint8, tokens (B, TEXT_LENGTH) int32) of step `step`'s scenes."""
  from jaxvg.data import synthetic
  rng = np.random.default_rng([VERSION, seed, step])
  scenes = [synthetic.random_scene(rng) for _ in range(batch_size)]
  frames = np.stack([synthetic.render(scene, 1)[0] for scene in scenes])
  tokens = tokenize([synthetic.caption(scene) for scene in scenes])
  if tokens[:, TEXT_LENGTH:].any():
    raise ValueError(f'a caption is longer than TEXT_LENGTH={TEXT_LENGTH} tokens')
  return frames, tokens[:, :TEXT_LENGTH]


def contrastive_loss(model: CLIP, params: Any, frames: jax.Array, tokens: jax.Array
                     ) -> tuple[jax.Array, jax.Array]:
  """CLIP's symmetric InfoNCE over the batch; returns (loss, image-to-text top-1 accuracy)."""
  image, text = model.apply({'params': params}, normalize_frames(frames), tokens)
  image = image / jnp.linalg.norm(image, axis=-1, keepdims=True)
  text = text / jnp.linalg.norm(text, axis=-1, keepdims=True)
  scale = jnp.exp(jnp.minimum(params['logit_scale'], MAX_LOGIT_SCALE))
  logits = scale * image @ text.T
  labels = jnp.arange(logits.shape[0])
  loss = (optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
          + optax.softmax_cross_entropy_with_integer_labels(logits.T, labels).mean()) / 2
  return loss, jnp.mean(jnp.argmax(logits, axis=1) == labels)


def pretrain(arch: str | CLIPArch = 'tiny', steps: int = STEPS, batch_size: int = BATCH_SIZE,
             seed: int = 0, log_every: int = 0) -> tuple[CLIP, Any, dict[str, float]]:
  """(model, params, final {'loss', 'accuracy'}) after `steps` contrastive steps from seed."""
  model = CLIP(get_arch(arch))
  params = jax.tree.map(jnp.asarray, init_params(model, seed))
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, LEARNING_RATE, min(WARMUP_STEPS, steps // 2), max(steps, 2))
  tx = optax.adamw(schedule, weight_decay=WEIGHT_DECAY)
  opt_state = tx.init(params)

  @jax.jit
  def step_fn(params, opt_state, frames, tokens):
    (loss, accuracy), grads = jax.value_and_grad(
        lambda p: contrastive_loss(model, p, frames, tokens), has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, accuracy

  metrics = {}
  for step in range(steps):
    params, opt_state, loss, accuracy = step_fn(params, opt_state,
                                                *scene_batch(seed, step, batch_size))
    if log_every and (step % log_every == 0 or step == steps - 1):
      print(f'clip pretrain step {step}: loss {float(loss):.3f} accuracy {float(accuracy):.2f}',
            flush=True)
    metrics = {'loss': loss, 'accuracy': accuracy}
  return model, params, {k: float(v) for k, v in metrics.items()}


def ensure_pretrained(arch: str = 'tiny', root: str = '', log_every: int = 50
                      ) -> tuple[CLIP, Any]:
  """(model, params) of the pretrained CLIP, training and caching it on first use."""
  path = cache_path(arch, root)
  if not os.path.exists(path):
    print(f'pretraining CLIP {arch} on synthetic frames and captions (once; cached as {path})',
          flush=True)
    _, params, _ = pretrain(arch, log_every=log_every)
    save_params(params, path)
  return CLIP(get_arch(arch)), load_params(path)
