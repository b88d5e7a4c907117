"""`model.content_positions` adds the 2-D sine positions to the visual tokens themselves: with an
identity `input_proj`, the model with it on equals the model with it off fed the C5 map plus the
positions, and the positions reach the outputs (it is not a no-op)."""
import jax
import jax.numpy as jnp
import numpy as np

from configs.cgstvg import synthetic
from jaxvg.modules.positions import sine_positions_2d
from jaxvg.projects.cgstvg.model import CGSTVG

B, T, H, W = 2, 3, 3, 4


def test_content_positions_add_the_sine_positions_to_the_visual_tokens():
  config = synthetic.get_config('tiny')
  d, c5_dims = config.model.hidden, 2048
  rng = np.random.default_rng(0)
  batch = {'c5': rng.normal(size=(B, T, H, W, c5_dims)).astype(np.float32),
           'frame_mask': np.ones((B, T), bool),
           'tokens': rng.integers(3, 50, (B, 5)).astype(np.int32),
           'text_mask': np.ones((B, 5), bool)}
  on = config.copy_and_resolve_references()
  on.model.content_positions = True
  config.model.content_positions = False
  params = CGSTVG(on).init(jax.random.key(0), batch)['params']
  identity = jnp.zeros((1, 1, c5_dims, d)).at[0, 0, jnp.arange(d), jnp.arange(d)].set(1.0)
  params = {**params, 'input_proj': {'kernel': identity, 'bias': jnp.zeros(d)}}

  pos = sine_positions_2d(jnp.ones((B, H, W), bool), d // 2)          # (B, H, W, d)
  shifted = dict(batch, c5=batch['c5'] + np.pad(pos, ((0, 0),) * 3 + ((0, c5_dims - d),))[:, None])
  with_positions = CGSTVG(on).apply({'params': params}, batch)
  added_by_hand = CGSTVG(config).apply({'params': params}, shifted)
  without = CGSTVG(config).apply({'params': params}, batch)
  for key in ('boxes', 'conf', 'sted', 'actioness'):
    np.testing.assert_allclose(with_positions[key], added_by_hand[key], rtol=1e-5, atol=1e-5,
                               err_msg=key)
  assert np.abs(with_positions['boxes'] - without['boxes']).max() > 1e-4
