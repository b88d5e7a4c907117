"""The engine: train, evaluate, predict and describe any task of `jaxvg.registry`.

Read top to bottom: `build_run` assembles what inference needs (task, mesh, model, frozen
backbone, jitted eval step); `init_train_state` adds the optimiser for training;
`train_and_evaluate` is the loop; `evaluate_split` turns model outputs into submission rows and
official metrics. Paths go through `etils.epath` (local or `gs://`).
"""
from __future__ import annotations

import dataclasses
import json
import signal
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from etils import epath
from flax import traverse_util
from jax.sharding import Mesh
from tqdm import tqdm

from jaxvg import data as data_lib
from jaxvg import evaluation
from jaxvg import registry
from jaxvg.errors import UserError
from jaxvg.train import checkpoint as checkpoint_lib
from jaxvg.train import frozen as frozen_lib
from jaxvg.train import mesh as mesh_lib
from jaxvg.train import optim
from jaxvg.train import step as step_lib
from jaxvg.train.logging import MetricWriter
from jaxvg.train.state import TrainState, count_params, params_sha256, summary


class NonFiniteLossError(RuntimeError):
  """Raised when a training loss is NaN or Inf; no checkpoint is written after it."""


@dataclasses.dataclass
class Run:
  """Everything inference needs, built once: no optimiser (see `init_train_state`)."""
  config: ml_collections.ConfigDict
  task: registry.Task
  mesh: Mesh
  model: Any
  frozen: registry.FrozenBackbone | None  # the task's frozen backbone, if it has one
  frozen_params: Any                      # its parameters laid out on the mesh (or None)
  param_shardings: Any
  eval_step: Any                          # jitted (params, batch, frozen_params) -> outputs
  pretrained: Any = None                  # overrides the task's pretrained subtree (_pretrained)


def _init_params(task: registry.Task, model, config, rng, pretrained: Any = None) -> Any:
  batch = task.dummy_batch(config, 1)
  params = model.init({'params': rng}, batch, train=False)['params']
  return params if pretrained is None else _replace_subtree(params, pretrained)


def _replace_subtree(params: Any, pretrained: Any) -> Any:
  """`params` with every leaf that `pretrained` has replaced by it (same path, shape)."""
  flat = traverse_util.flatten_dict(dict(params))
  for path, value in traverse_util.flatten_dict(dict(pretrained)).items():
    if path not in flat or flat[path].shape != value.shape:
      found = flat[path].shape if path in flat else 'no such parameter'
      raise UserError(f"pretrained parameter {'/'.join(path)} {value.shape}: the model has "
                      f'{found}')
    flat[path] = jnp.asarray(value, flat[path].dtype)
  return traverse_util.unflatten_dict(flat)


def _root_keys(config: ml_collections.ConfigDict) -> tuple[jax.Array, jax.Array]:
  """(parameter init key, train-state key), both from `config.seed`."""
  return tuple(jax.random.split(jax.random.key(config.seed)))


def build_run(config: ml_collections.ConfigDict, devices: Sequence[jax.Device] | None = None
              ) -> Run:
  """Task, mesh (over `devices`, default all), model, frozen backbone and the jitted eval step."""
  task = registry.get_task(config.task)
  mesh = mesh_lib.make_mesh(config.mesh, devices)
  model = task.build_model(config)
  frozen = task.frozen_backbone(config)
  abstract = jax.eval_shape(lambda: _init_params(task, model, config, _root_keys(config)[0]))
  param_shardings = mesh_lib.param_shardings(mesh, abstract, task.sharding_rules(config))
  encode = frozen.encode if frozen is not None else None
  eval_step = step_lib.jit_eval_step(step_lib.make_eval_step(model, config, encode), mesh,
                                     param_shardings, frozen_lib.shardings(frozen, mesh))
  return Run(config, task, mesh, model, frozen, frozen_lib.lay_out(frozen, mesh),
             param_shardings, eval_step)


def _pretrained(run: Run) -> Any:
  """`run.pretrained`, else the task's pretrained subtree, asked for only where parameters start
  fresh: evaluating, predicting or inspecting a checkpoint never makes a pretraining cache."""
  if run.pretrained is not None or run.task.pretrained_params is None:
    return run.pretrained
  return run.task.pretrained_params(run.config)


def init_params(run: Run) -> Any:
  """Freshly initialised parameters, laid out on the mesh."""
  key, pretrained = _root_keys(run.config)[0], _pretrained(run)
  return jax.jit(lambda: _init_params(run.task, run.model, run.config, key, pretrained),
                 out_shardings=run.param_shardings)()


def _training(task: registry.Task) -> registry.Training:
  if task.training is None:
    raise UserError(f'task {task.name!r} is not trainable (it has no Training); use '
                    '--mode predict or eval')
  return task.training


def init_train_state(run: Run, steps_per_epoch: int) -> tuple[TrainState, Any]:
  """(initial train state on the mesh, its shardings): parameters, optimiser (with the task's
  parameter groups), PRNG key and, with `train.ema_decay` > 0, the EMA of the parameters."""
  config, task = run.config, run.task
  training = _training(task)
  params_key, state_key = _root_keys(config)
  abstract_params = jax.eval_shape(lambda: _init_params(task, run.model, config, params_key))
  if training.make_optimizer is not None:
    tx = training.make_optimizer(config, steps_per_epoch, abstract_params)
  else:
    labels = (training.param_labels(config, abstract_params)
              if training.param_labels is not None else None)
    tx = optim.make_optimizer(config.optim, steps_per_epoch, labels)
  ema_decay = float(config.train.get('ema_decay', 0.0))

  pretrained = _pretrained(run)

  def init_state():
    return TrainState.create(_init_params(task, run.model, config, params_key, pretrained),
                             tx, state_key, ema_decay)

  shardings = mesh_lib.param_shardings(run.mesh, jax.eval_shape(init_state),
                                       task.sharding_rules(config))
  return jax.jit(init_state, out_shardings=shardings)(), shardings


def load_released(run: Run, path: str) -> Any:
  """Parameters from a released (official) checkpoint file, laid out on the mesh."""
  if run.task.load_weights is None:
    raise UserError(f'task {run.task.name!r} has no released-checkpoint loader; --checkpoint '
                    "takes 'latest' or 'best'")
  if not epath.Path(path).exists():
    raise UserError(f'{path}: no such checkpoint file')
  return jax.device_put(run.task.load_weights(path, run.config), run.param_shardings)


def restore_params(run: Run, workdir: str | None, checkpoint: str) -> Any:
  """The evaluated weights of `<workdir>` checkpoint 'latest' / 'best', or of a released
  checkpoint's path; reads no optimiser state and writes nothing."""
  if checkpoint not in ('latest', 'best'):
    return load_released(run, checkpoint)
  if not workdir:
    raise UserError(f"--checkpoint {checkpoint} needs the run's --workdir")
  shapes = jax.eval_shape(lambda: _init_params(run.task, run.model, run.config,
                                               _root_keys(run.config)[0]))
  abstract = jax.tree.map(lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh),
                          shapes, run.param_shardings)
  ckpts = checkpoint_lib.Checkpoints(workdir, run.config, asynchronous=False, read_only=True)
  try:
    params, _ = ckpts.restore_params(abstract, best=checkpoint == 'best',
                                     ema=float(run.config.train.get('ema_decay', 0.0)) > 0)
  finally:
    ckpts.close()
  return params


def info(config: ml_collections.ConfigDict, workdir: str | None) -> str:
  """Model summary; with a trained workdir, the latest checkpoint's step and parameter digest."""
  task = registry.get_task(config.task)
  model = task.build_model(config)
  params = jax.eval_shape(lambda: _init_params(task, model, config, jax.random.key(0)))
  lines = [f'task: {config.task}   devices: {jax.device_count()} ({jax.devices()[0].platform})']
  if workdir and (epath.Path(workdir) / 'checkpoints' / 'latest').exists():
    run = build_run(config)
    ckpts = checkpoint_lib.Checkpoints(workdir, config, asynchronous=False, read_only=True)
    if ckpts.latest_step() is not None:
      lines.append(f'latest checkpoint: step {ckpts.latest_step()}  '
                   f'params sha256: {params_sha256(restore_params(run, workdir, "latest"))}')
    ckpts.close()
  lines.append(summary(params, trainable_mask(task, config, params)))
  return '\n'.join(lines)


def trainable_mask(task: registry.Task, config: ml_collections.ConfigDict, params: Any) -> Any:
  """A like pytree of bools: False for the parameters the optimiser freezes (None: all train)."""
  if task.training is None or task.training.param_labels is None:
    return None
  return jax.tree.map(lambda label: not optim.is_frozen(config.optim, label),
                      task.training.param_labels(config, params))


class _Preemption:
  """SIGTERM (TPU preemption, `kill`) asks the loop to save and exit cleanly."""

  def __init__(self):
    self.requested = False
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def restore(self):
    signal.signal(signal.SIGTERM, self._previous)


def _check_finite(state: TrainState) -> None:
  bad = int(jax.device_get(state.first_nonfinite_step))
  if bad >= 0:
    raise NonFiniteLossError(
        f'non-finite loss at step {bad} (loss or gradient NaN/Inf): training stopped; the last '
        f'good checkpoint is kept and nothing after step {bad} was saved')


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       init_from: str | None = None) -> dict[str, float]:
  """Trains for config.train.epochs, evaluating every epoch; resumes from `workdir` if it can.
  The task's `FinalStage`, where its config asks for one, runs after the last step.

  Returns the best value of every validation metric seen (as the official code reports).
  """
  workdir = epath.Path(workdir)
  train_data = data_lib.make_loader(config, config.data.train_split, train=True)
  val_data = data_lib.make_loader(config, config.data.val_split, train=False)
  steps_per_epoch = train_data.batches_per_epoch
  run = build_run(config)
  state, state_shardings = init_train_state(run, steps_per_epoch)
  schedule = optim.learning_rate_schedule(config.optim, steps_per_epoch)
  encode = run.frozen.encode if run.frozen is not None else None
  train_step = step_lib.jit_train_step(
      step_lib.make_train_step(_training(run.task), run.model, config, schedule, encode),
      run.mesh, state_shardings, frozen_lib.shardings(run.frozen, run.mesh))
  ckpts = checkpoint_lib.Checkpoints(workdir, config)
  writer = MetricWriter(workdir)
  best: dict[str, float] = _read_json(workdir / 'best_metrics.json')

  # The data stream covers every epoch; its Grain iterator state is checkpointed with the model.
  batches = iter(train_data)
  if ckpts.latest_step() is not None:
    state, data_state, _ = ckpts.restore(state)
    batches.set_state(data_state)
    print(f'resumed from step {int(state.step)}')
  elif init_from:
    state = state.replace(params=load_released(run, init_from))
    if state.ema_params is not None:
      state = state.replace(ema_params=state.params)
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / 'config.json').write_text(config.to_json_best_effort(indent=2))
    print(f'devices: {dict(run.mesh.shape)} ({jax.devices()[0].platform}); '
          f'trainable parameters: '
          f'{count_params(state.params, trainable_mask(run.task, config, state.params))}; '
          f'{steps_per_epoch} steps per epoch')

  total_steps = config.train.epochs * steps_per_epoch
  if config.train.max_steps > 0:
    total_steps = min(total_steps, config.train.max_steps)
  final_stage = _training(run.task).final_stage
  final_stage = final_stage(config) if final_stage is not None else None
  step = int(jax.device_get(state.step))
  if step and step % steps_per_epoch == 0 and not _evaluated(workdir, step):
    _evaluate_epoch(run, state, val_data, ckpts, writer, best, workdir, step, steps_per_epoch)
  last_metrics: dict[str, float] = {}
  preemption = _Preemption()
  bar = tqdm(total=total_steps, initial=step, disable=jax.process_index() != 0,
             dynamic_ncols=True)
  last_log = (time.perf_counter(), step)
  try:
    while step < total_steps and not preemption.requested:
      batch, _ = next(batches)
      state, metrics = train_step(state, mesh_lib.to_global(batch, run.mesh), run.frozen_params)
      step += 1
      bar.update(1)
      if step == total_steps and final_stage is not None:   # saved below with the last step
        _check_finite(state)
        state = _run_final_stage(run, final_stage, state, val_data, writer, step)
      if step % config.train.log_every == 0 or step == total_steps:
        _check_finite(state)
        now = time.perf_counter()
        rate = (step - last_log[1]) / max(now - last_log[0], 1e-9)
        last_log = (now, step)
        scalars = {k: float(v) for k, v in jax.device_get(metrics).items()}
        writer.write(step, 'train', {**scalars, 'steps_per_s': rate})
        bar.set_postfix(loss=f'{scalars["loss"]:.4f}', steps_s=f'{rate:.2f}')
      epoch_end = step % steps_per_epoch == 0
      if step % config.train.checkpoint_every == 0 or epoch_end or preemption.requested:
        _check_finite(state)
        ckpts.save(state, batches.get_state(), {'epoch': step // steps_per_epoch})
      if epoch_end:
        last_metrics = _evaluate_epoch(run, state, val_data, ckpts, writer, best, workdir, step,
                                       steps_per_epoch)
    if preemption.requested:
      print(f'SIGTERM: saved step {step}; exiting cleanly')
    elif last_metrics:
      if config.eval.get('swapped_queries', False):
        report_swapped_queries(run, state.eval_params, val_data, last_metrics, workdir)
      report_references(run, val_data, last_metrics, workdir)
  finally:
    bar.close()
    preemption.restore()
    ckpts.wait()
    ckpts.close()
    writer.close()
  return best


def _run_final_stage(run: Run, stage: registry.FinalStage, state: TrainState, val_data,
                     writer: MetricWriter, step: int) -> TrainState:
  """The task's `FinalStage` after the last step: val scored before it (logged as the split
  'val_before_final_stage'), then the subtree it returns written, laid out on the mesh, into the
  trained and the evaluated weights. A run resumed after it finds it in the last checkpoint."""
  before = evaluate_split(run, state.eval_params, val_data)
  writer.write(step, 'val_before_final_stage', before)
  if jax.process_index() == 0:
    print(f'before the {stage.name}: ' + '  '.join(f'{k} {v:.2f}' for k, v in before.items()))
  shardings = traverse_util.flatten_dict(dict(run.param_shardings))
  fitted = traverse_util.unflatten_dict({
      path: jax.device_put(np.asarray(value), shardings.get(path))
      for path, value in traverse_util.flatten_dict(dict(stage.apply(run, state.eval_params)))
      .items()})
  state = state.replace(params=_replace_subtree(state.params, fitted))
  if state.ema_params is not None:
    state = state.replace(ema_params=_replace_subtree(state.ema_params, fitted))
  return state


def _evaluate_epoch(run: Run, state: TrainState, val_data, ckpts, writer: MetricWriter,
                    best: dict[str, float], workdir: epath.Path, step: int,
                    steps_per_epoch: int) -> dict[str, float]:
  """Scores the val split, logs it, tracks best values and offers the best checkpoint."""
  metrics = evaluate_split(run, state.eval_params, val_data)
  _record_eval(writer, step, step // steps_per_epoch, metrics, best, workdir)
  ckpts.save_best(state, metrics, {'epoch': step // steps_per_epoch})
  return metrics


def report_swapped_queries(run: Run, params: Any, val_data, metrics: dict[str, float],
                           workdir: epath.Path | None = None) -> dict[str, float]:
  """Scores val again with every query swapped for another video's (`jaxvg.evaluation.swapped`)
  and prints true vs swapped: the part of the score the query earns. With a workdir, also
  writes both to `swapped_queries.json`."""
  from jaxvg.evaluation import swapped
  loader = data_lib.make_loader(run.config, run.config.data.val_split, train=False,
                                records=swapped.swap_queries(val_data.records))
  blind = evaluate_split(run, params, loader)
  primary = data_lib.readers.evaluation_protocol(run.config)[1]
  names = [n for n in dict.fromkeys(('MR-full-R1@0.5', primary)) if n in metrics]
  if jax.process_index() == 0:
    print(swapped.format_gap(metrics, blind, names))
    if workdir is not None:
      (workdir / 'swapped_queries.json').write_text(
          json.dumps({'true': metrics, 'swapped': blind}, indent=2, sort_keys=True))
  return blind


def report_references(run: Run, val_data, metrics: dict[str, float],
                      workdir: epath.Path | None = None) -> None:
  """Prints the model's primary val metric beside the task's untrained references (its
  `reference_scores`: a query-blind baseline, an oracle); with a workdir, writes all of them to
  `references.json`. Process 0 only; nothing when the task has none for this dataset."""
  if run.task.reference_scores is None or jax.process_index() != 0:
    return
  references = run.task.reference_scores(run.config, val_data.records)
  if not references:
    return
  primary = data_lib.readers.evaluation_protocol(run.config)[1]
  for name, scores in references.items():
    print(f'{primary}: model {metrics[primary]:.2f}   {name} {scores[primary]:.2f}   '
          f'gap {metrics[primary] - scores[primary]:+.2f}')
  if workdir is not None:
    (workdir / 'references.json').write_text(
        json.dumps({'model': metrics, **references}, indent=2, sort_keys=True))


def _evaluated(workdir: epath.Path, step: int) -> bool:
  """Whether metrics.jsonl already holds the validation scores of `step`."""
  path = workdir / 'metrics.jsonl'
  if not path.exists():
    return False
  rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
  return any(r['split'] == 'val' and r['step'] == step for r in rows)


def _read_json(path: epath.Path) -> dict[str, Any]:
  return json.loads(path.read_text()) if path.exists() else {}


def _record_eval(writer: MetricWriter, step: int, epoch: int, metrics: dict[str, float],
                 best: dict[str, float], workdir: epath.Path) -> None:
  """Logs every metric and tracks the best value of each independently (official protocol)."""
  for name, value in metrics.items():
    if name not in best or value > best[name]:
      best[name] = value
  writer.write(step, 'val', metrics)
  if jax.process_index() == 0:
    (workdir / 'best_metrics.json').write_text(json.dumps(best, indent=2, sort_keys=True))
    brief = '  '.join(f'{k} {v:.2f}' for k, v in metrics.items())
    print(f'epoch {epoch} step {step}: {brief}')


def _local_outputs(run: Run, outputs: dict[str, jax.Array]) -> dict[str, np.ndarray]:
  """This host's rows of the outputs, matching its own metadata rows. An output's batch axis is
  the one its sharding splits over the data axis (the compiler carries the batch's sharding to
  outputs whose batch axis is not the first, such as CG-STVG's per-layer boxes); an output it
  does not split is batch-leading."""
  if jax.process_count() == 1:
    return jax.device_get(outputs)

  def batch_spec(x: jax.Array) -> jax.sharding.PartitionSpec:
    spec = getattr(x.sharding, 'spec', None)
    names = [a for axes in (spec or ()) if axes is not None
             for a in (axes if isinstance(axes, tuple) else (axes,))]
    return spec if mesh_lib.DATA_AXIS in names else jax.sharding.PartitionSpec(mesh_lib.DATA_AXIS)

  return jax.device_get(multihost_utils.global_array_to_host_local_array(
      outputs, run.mesh, jax.tree.map(batch_spec, outputs)))


def _gather_rows(rows: list[dict]) -> list[dict]:
  """Submission rows of every host, on every host (JSON bytes through an all-gather)."""
  if jax.process_count() == 1:
    return rows
  payload = np.frombuffer(json.dumps(rows).encode(), np.uint8)
  sizes = multihost_utils.process_allgather(np.array([payload.size]))
  padded = np.zeros(int(sizes.max()), np.uint8)
  padded[:payload.size] = payload
  gathered = multihost_utils.process_allgather(padded)
  return [row for blob, size in zip(gathered, sizes.ravel())
          for row in json.loads(bytes(blob[:size]).decode())]


def predict_rows(run: Run, params: Any, loader) -> list[dict]:
  """Submission rows for every real sample of `loader`, in loader order."""
  rows = []
  for batch, metadata in loader:
    outputs = run.eval_step(params, mesh_lib.to_global(batch, run.mesh), run.frozen_params)
    metadata = {**metadata, 'sample_mask': batch['sample_mask']}
    rows.extend(run.task.postprocess(_local_outputs(run, outputs), metadata, run.config))
  return _gather_rows(rows)


def evaluate_split(run: Run, params: Any, loader) -> dict[str, float]:
  """Official metrics (the evaluator's flat `brief`) of the model on `loader`'s split."""
  rows = predict_rows(run, params, loader)
  protocol, _ = data_lib.readers.evaluation_protocol(run.config)
  results = evaluation.evaluate(protocol, rows, loader.ground_truth())
  return {k: float(v) for k, v in results['brief'].items()}


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str | None, checkpoint: str
                        ) -> dict[str, float]:
  """Scores a checkpoint on the val split and prints the metrics; writes nothing."""
  run = build_run(config)
  params = restore_params(run, workdir, checkpoint)
  val_data = data_lib.make_loader(config, config.data.val_split, train=False)
  metrics = evaluate_split(run, params, val_data)
  print(json.dumps(metrics, indent=2))
  if config.eval.get('swapped_queries', False):
    report_swapped_queries(run, params, val_data, metrics)
  report_references(run, val_data, metrics)
  return metrics


def predict_split(config: ml_collections.ConfigDict, workdir: str, checkpoint: str
                  ) -> epath.Path:
  """Writes `<workdir>/<dataset>_<split>_submission.jsonl` in the benchmark's format."""
  out_dir = epath.Path(workdir)
  run = build_run(config)
  params = restore_params(run, workdir, checkpoint)
  loader = data_lib.make_loader(config, config.data.val_split, train=False)
  rows = predict_rows(run, params, loader)
  path = out_dir / f'{config.data.dataset}_{config.data.val_split}_submission.jsonl'
  if jax.process_index() == 0:
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(json.dumps(row) + '\n' for row in rows))
    print(f'wrote {len(rows)} predictions to {path}')
  return path
