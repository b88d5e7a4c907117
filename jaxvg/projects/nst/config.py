"""NST's settings. The paper's body is not public: every field below
that the abstract does not fix is a reconstruction, named and commented so a run states it."""
from __future__ import annotations

import dataclasses
from typing import Literal, Mapping

import ml_collections

Method = Literal['nst', 'lora', 'full', 'frozen']


@dataclasses.dataclass(frozen=True)
class PointSpec:
  """One injection point: a frozen Dense / 1×1 conv of the base model, by module path relative
  to the base (e.g. 'encoder/layers_0/linear2')."""
  path: str
  # Axes of the layer's input averaged into one quality score (never the last, channel axis):
  # for a (B, T, H, W, C) feature map, (2, 3) or (-3, -2) gives one score per frame (nst.md
  # §3.1: "per frame"); () scores every position.
  pool_axes: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class NSTConfig:
  """NST, its foils and the reconstructed choices (docs/nst.md lists what the paper would fix)."""
  # 'nst': QAU + DSR residuals on the points' inputs; 'lora': a low-rank update of the same
  # layers; 'full': the same layers' weights trained; 'frozen': the base alone.
  method: Method = 'nst'
  points: tuple[PointSpec, ...] = ()
  # §3.3: a point whose input also feeds another consumer (a skip path) is refused unless this
  # is set; it is then flagged in `injection.resolve_points`'s report and by a warning.
  allow_shared_inputs: bool = False
  # Declarations for models that do not declare their injection points (`NST_INPUTS`):
  # (module-path regex, 'exclusive' | 'shared') pairs, checked before the model's own.
  declared_inputs: tuple[tuple[str, str], ...] = ()

  # Null space [recon, §2]: exact SVD kernel of the frozen weight (the abstract's "null space of
  # frozen weights"), NumPy's matrix_rank tolerance; 'energy' truncates full-rank layers.
  rank_rule: Literal['matrix_rank', 'energy'] = 'matrix_rank'
  energy: float = 1e-3

  # DSR [recon, §3.2]: Δ = P_N g_N(x) + q · P_R g_R(x); generators d → hidden → d bottleneck MLPs
  # with a zero-initialised last layer, so NST starts as the identity.
  generator_hidden: int = 64
  # One generator for both parts (Δ = P_N g + q P_R g) instead of two.
  shared_generator: bool = False
  # The null part is invisible to the frozen layer; with layer-local injection at an exclusive
  # input it changes nothing anywhere. Kept for fidelity to the abstract's "dual space"; False
  # drops g_N (a pure q-gated row-space residual).
  null_generator: bool = True

  # QAU [recon, §3.1]: q = sigmoid(MLP([mean, RMS] of x over pool_axes)), one per point.
  quality_hidden: int = 32
  # Initial logit of q (0 → q = 0.5). The generators start at zero, so Δ = 0 regardless.
  quality_init_bias: float = 0.0
  # Weight of the BCE of q against the known HQ (0) / LQ (1) label; 0 trains q only through
  # the task loss.
  quality_bce_weight: float = 1.0
  # At evaluation q is thresholded to exactly 0 or 1, so a clip the QAU calls HQ sees the
  # frozen model bit for bit (a sigmoid never reaches 0). None keeps the soft q.
  quality_hard_gate: float | None = 0.5

  # LoRA foil: y = W x + b + (alpha / rank) · B A x, A ~ U(±1/sqrt(d_in)), B = 0.
  lora_rank: int = 8
  lora_alpha: float = 16.0

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict | Mapping) -> 'NSTConfig':
    """From a ConfigDict `nst` block; `points` may list paths or {path, pool_axes} dicts."""
    fields = dict(config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config)
    unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise ValueError(f'unknown NST config fields: {sorted(unknown)}')
    points = []
    for point in fields.pop('points', ()):
      if isinstance(point, str):
        points.append(PointSpec(point))
      else:
        points.append(PointSpec(point['path'], tuple(point.get('pool_axes', ()))))
    declared = tuple(tuple(pair) for pair in fields.pop('declared_inputs', ()))
    return cls(points=tuple(points), declared_inputs=declared, **fields)


METHODS = ('nst', 'lora', 'full', 'frozen')


def unlocked_copy(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config` whose fields can be set (the CLI locks the run's config)."""
  return ml_collections.ConfigDict(config.to_dict())


def tune(base: ml_collections.ConfigDict, arg: str, *, points: tuple[str, ...],
         radius_scale: float) -> ml_collections.ConfigDict:
  """A CG-STVG dataset config turned into the 'nst' task's: `arg` picks the method ('' = NST,
  'lora', 'full', 'frozen'); `points` are `cgstvg.POINT_GROUPS` names or module paths."""
  method = arg or 'nst'
  if method not in METHODS:
    raise ValueError(f'the argument must be one of {METHODS} (or empty for nst), got {arg!r}')
  c = base
  c.task = 'nst'
  n = c.nst = ml_collections.ConfigDict()
  n.method = method
  # The trained CG-STVG to tune: an official .pth or the workdir of a `cgstvg` run. Training
  # starts from it (the engine's init_from) and the null-space bases are its kernels' SVD.
  n.base_checkpoint = ''
  n.points = points
  defaults = NSTConfig()
  for field in dataclasses.fields(NSTConfig):
    if field.name not in ('method', 'points'):
      n[field.name] = getattr(defaults, field.name)

  # The mixed-quality protocol [recon, nst.md §4, stvg_base_and_data.md §3.4]: per video, HQ
  # with probability 1 - p, else one kind and one severity for every frame.
  d = c.degrade = ml_collections.ConfigDict()
  d.seed = 0                  # the draws are a function of (seed, video id) only
  d.split = 'mixed'           # the split evaluated: 'hq' | 'lq' | 'mixed'
  d.probability = 0.5
  # The abstract's motion blur, defocus blur and compression ('h264' needs h264_frames_dir).
  d.kinds = ('motion_blur', 'defocus_blur', 'jpeg')
  d.severities = (1, 2, 3, 4, 5)
  d.radius_scale = radius_scale   # ImageNet-C's blur radii are for 224-pixel images
  d.train_per_epoch = True    # training redraws every epoch: each video seen clean and degraded
  d.h264_frames_dir = ''      # `prepare degrade` then `prepare stvg_frames` output, if used

  # Only the units train [recon: the paper's schedule is unknown]: one AdamW group, the base
  # labelled 'frozen'. No EMA: it would round the frozen weights (d·w + (1 − d)·w ≠ w in
  # float32), and NST's HQ guarantee is bit for bit.
  o = c.optim
  o.lr = 1e-4
  o.groups = ml_collections.ConfigDict({'frozen': {'frozen': True}})
  o.warmup_steps = 0
  o.decay_epochs = ()
  c.train.ema_decay = 0.0
  c.train.epochs = 10
  return c
