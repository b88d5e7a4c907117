"""NST on the CG-STVG base: the injection points by name, the model the engine applies, the
frozen base checkpoint and its null-space bases, and the on-device degradation step.

Points (`POINT_GROUPS`; `nst.points` lists group names or module paths): the exact ones of
`stvg_base_and_data.md` §2.4, each with a per-frame quality score. The model declares which
inputs are exclusive (`CGSTVG.NST_INPUTS`), so NST refuses the shared ones (ResNet `conv1`,
`ref_point_head`) unless `nst.allow_shared_inputs` flags them.

The engine applies {'params'} only, so the bases, a function of the frozen weights, travel as
the task's frozen backbone (`frozen_backbone`): never differentiated, never in the optimiser
or the checkpoints, computed once per run from `nst.base_checkpoint`. Its `encode` also
degrades the frames on device, video by video, by the (kind, severity, seed) the data adapter
drew for each (`jaxvg.projects.nst.data`).
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import ml_collections
from etils import epath

from jaxvg.data import degradations as dg
from jaxvg.errors import UserError
from jaxvg.modules import nullspace
from jaxvg.projects.cgstvg.model import CGSTVG, dummy_batch
from jaxvg.projects.nst import injection
from jaxvg.projects.nst.config import NSTConfig

# Group name -> (module-path format over the layer index, or a path; axes pooled into one score
# per frame). Inputs: C5 / Swin (B, T, h, w, C); encoder tokens (B, T, N, C); decoder queries
# (B, T, C), one per frame.
POINT_GROUPS: dict[str, tuple[str, tuple[int, ...]]] = {
    'input_proj': ('input_proj', (2, 3)),
    'input_proj2': ('input_proj2', (2, 3)),
    'encoder_ffn': ('spatial_layers_{}/linear2', (2,)),
    'temporal_decoder_ffn': ('time_layers_{}/linear2', ()),
    'spatial_decoder_ffn': ('spatial_decoder/layers_{}/linear2', ()),
}
BASES_KEY = 'nst_bases'          # the batch key `encode` puts the bases under
QUALITY_KEY = 'quality_logits'   # the outputs' QAU logits, {point: (B, T, ...)}, in training


def expand_points(points: tuple, model: ml_collections.ConfigDict) -> tuple[dict, ...]:
  """Group names (`POINT_GROUPS`) to one {path, pool_axes} per layer; paths and dicts pass."""
  layers = {'encoder_ffn': model.enc_layers, 'temporal_decoder_ffn': model.dec_layers,
            'spatial_decoder_ffn': model.dec_layers}
  expanded = []
  for point in points:
    if isinstance(point, str) and point in POINT_GROUPS:
      path, pool = POINT_GROUPS[point]
      if point == 'input_proj2' and not model.use_swin:
        raise UserError("nst.points: 'input_proj2' needs model.use_swin (the Swin branch)")
      expanded += [{'path': path.format(i), 'pool_axes': pool} for i in range(layers.get(point, 1))]
    elif isinstance(point, str):
      expanded.append({'path': point, 'pool_axes': ()})
    else:
      expanded.append(dict(point))
  return tuple(expanded)


def nst_config(config: ml_collections.ConfigDict) -> NSTConfig:
  """The run's `NSTConfig`, its point groups expanded for the model's depth."""
  fields = config.nst.to_dict()
  fields.pop('base_checkpoint')
  fields['points'] = expand_points(tuple(fields.get('points', ())), config.model)
  return NSTConfig.from_config(fields)


class TunedCGSTVG(injection.Tuned):
  """`Tuned(CGSTVG)` as the engine applies it: `(batch, train)` -> CG-STVG's outputs, plus the
  QAU logits under `QUALITY_KEY` in training. The bases come in the batch (`BASES_KEY`)."""

  def __call__(self, batch: Mapping[str, Any], train: bool = False, **kwargs
               ) -> dict[str, jax.Array]:
    batch = dict(batch)
    bases = batch.pop(BASES_KEY, None)
    outputs, logits = super().__call__(batch, train=train, bases=bases, return_quality=True,
                                       **kwargs)
    return {**outputs, QUALITY_KEY: logits} if train and logits else outputs


def build_model(config: ml_collections.ConfigDict) -> TunedCGSTVG:
  """CG-STVG frozen (stop_gradient on its parameters) with the units of `config.nst`."""
  nst = nst_config(config)
  return TunedCGSTVG(injection.frozen_base(CGSTVG, nst)(config), nst)


def load_base(path: str, config: ml_collections.ConfigDict) -> Any:
  """The frozen CG-STVG parameters of `nst.base_checkpoint`: an official `.pth` (the `cgstvg`
  task's loader) or the directory of a `cgstvg` run (its best evaluated weights)."""
  from jaxvg.projects.cgstvg import task as cgstvg_task
  if not path:
    raise UserError('nst.base_checkpoint is empty: NST tunes a trained CG-STVG (an official '
                    '.pth or the workdir of a cgstvg run)')
  if not epath.Path(path).exists():
    raise UserError(f'nst.base_checkpoint {path}: no such file or directory')
  if not epath.Path(path).is_dir():
    return cgstvg_task.TASK.load_weights(path, config)
  from jaxvg.train import checkpoint as checkpoint_lib  # the engine's reader of run directories
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
      jax.eval_shape(lambda: CGSTVG(config).init(jax.random.key(0), dummy_batch(config, 1))))
  abstract = abstract['params']
  ckpts = checkpoint_lib.Checkpoints(path, config, asynchronous=False, read_only=True)
  try:
    params, _ = ckpts.restore_params(abstract, best=ckpts.best.latest_step() is not None)
  finally:
    ckpts.close()
  return params


def tuned_params(base: Any | None, config: ml_collections.ConfigDict, key: jax.Array) -> Any:
  """The tuned model's parameters: `base` frozen under 'base' (None: freshly initialised, as
  `key` gives it), the units freshly initialised."""
  params = jax.jit(build_model(config).init)(key, dummy_batch(config, 1))['params']
  return params if base is None else {**params, 'base': base}


def bases(base: Any, config: ml_collections.ConfigDict) -> dict[str, dict[str, jax.Array]]:
  """{'residual_<unit>': basis entry} of NST's points, by SVD of the frozen kernels ({} for the
  foils)."""
  nst = nst_config(config)
  if nst.method != 'nst':
    return {}
  variables, _ = injection.attach_nullspace({'params': {'base': base}}, CGSTVG(config), nst)
  return variables[nullspace.COLLECTION]


def degrade(batch: dict[str, jax.Array], radius_scale: float) -> dict[str, jax.Array]:
  """The batch with each video's frames degraded by its drawn kind and severity, from its own
  key (`degrade_seed`), so a video is degraded alike in whatever batch it lands. Videos run one
  after another (`lax.map`), each computing only its own kind's branch."""
  keys = jax.vmap(jax.random.key)(batch['degrade_seed'])
  frames = jax.lax.map(lambda args: dg.degrade_video(*args, radius_scale=radius_scale),
                       (batch['frames'], batch['degrade_kind'], batch['degrade_severity'], keys))
  return {**batch, 'frames': frames}
