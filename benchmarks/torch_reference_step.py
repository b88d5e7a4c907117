"""The official R²-Tuning train step in PyTorch, timed on this machine: the same-run anchor for
`python -m jaxvg.bench --official_step_s`.

The shared figure (6.47 s per step, `../shared/README.md`) was measured on another machine of
this kind; machines of a kind differ (the 4096³ matmul ceiling has been seen from 108 to 389
GFLOP/s here), so a speed-up is only meaningful against the official step timed on the same
machine. This script builds the parity fixture's PyTorch model
(`tests/fixtures/r2tuning_torch_reference.py`, written from the official code: video_map, v_map
and q_map over every token as officially) at QVHighlights widths and times forward + the
official losses + backward + grad-norm clipping + AdamW at batch 8 × 75 clips × 4 layers × 50
tokens × 768, 20 query tokens × 512, dropout 0.5, fp32, float32 inputs. The losses follow
`models/loss.py` of the official code (per-sample FCOS assignment, focal, L1, sampled NCE row +
col, video- and layer-level InfoNCE). Needs torch (not a jaxvg dependency):

  pip install torch==2.13.0 && python benchmarks/torch_reference_step.py [--threads 2]

With `--alternate`, each official step is followed by one jaxvg step (the same batch shape, in
a child process running `python -m jaxvg.bench --serve_train_steps`), `--repeats` rounds, and the
speed-up is reported per round: the tightest same-machine comparison, as the host's drift during
the run moves both sides alike.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import statistics
import subprocess
import sys
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # jaxvg.bench's protocol constant, whether or not jaxvg is installed
from jaxvg.bench import SERVE_PREFIX, host  # noqa: E402  (imports no JAX)

FIXTURE = REPO / 'tests/fixtures/r2tuning_torch_reference.py'
BATCH, CLIPS, QUERY_TOKENS = 8, 75, 20


def load_reference():
  """The fixture module with the official QVHighlights widths (it reads them as globals)."""
  spec = importlib.util.spec_from_file_location('r2tuning_torch_reference', FIXTURE)
  ref = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(ref)
  ref.DIMS, ref.VIDEO_DIMS, ref.QUERY_DIMS, ref.TOKENS, ref.HEADS, ref.K = 256, 768, 512, 50, 8, 4
  ref.T, ref.L = CLIPS, QUERY_TOKENS
  return ref


def points(num_clips: int, strides=(1, 2, 4, 8)) -> torch.Tensor:
  """(N, 4) [position, range lo, range hi, stride], as the official PointGenerator."""
  bounds = [0.0] + [float(s) for s in strides[1:]] + [float('inf')]
  rows = []
  for s, lo, hi in zip(strides, bounds[:-1], bounds[1:]):
    pos = torch.arange(num_clips // s, dtype=torch.float32) * s
    rows.append(torch.stack([pos, torch.full_like(pos, lo), torch.full_like(pos, hi),
                             torch.full_like(pos, s)], 1))
  return torch.cat(rows)


def targets(point: torch.Tensor, windows: torch.Tensor, radius: float = 1.5):
  """Official per-sample assignment: centre sampling, range test, shortest window."""
  cls, reg = [], []
  for gt in windows:                               # the official loop over the batch
    n = point.size(0)
    lens = (gt[:, 1] - gt[:, 0])[None].repeat(n, 1)
    seg = gt[None].expand(n, gt.size(0), 2)
    r = torch.stack((point[:, 0, None] - seg[..., 0], seg[..., 1] - point[:, 0, None]), -1)
    centre = seg.mean(-1)
    lo = torch.maximum(centre - point[:, 3, None] * radius, seg[..., 0])
    hi = torch.minimum(centre + point[:, 3, None] * radius, seg[..., 1])
    inside = torch.minimum(point[:, 0, None] - lo, hi - point[:, 0, None]) >= 0
    dist = r.max(-1)[0]
    in_range = (dist >= point[:, 1, None]) & (dist <= point[:, 2, None])
    lens = lens.masked_fill(~(inside & in_range), float('inf'))
    min_len, idx = lens.min(1)
    cls.append(((lens <= min_len[:, None] + 1e-3) & (lens < float('inf'))).any(1).float())
    reg.append(r[torch.arange(n), idx] / point[:, 3, None])
  return torch.stack(cls), torch.stack(reg)


def info_nce(a: torch.Tensor, b: torch.Tensor, tau: float = 0.07) -> torch.Tensor:
  """Symmetric InfoNCE over the second-to-last axis, L2-normalised inputs."""
  logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).transpose(-1, -2) / tau
  labels = torch.arange(logits.size(-1)).expand(logits.shape[:-1])
  return (F.cross_entropy(logits.flatten(0, -2), labels.flatten()) +
          F.cross_entropy(logits.transpose(-1, -2).flatten(0, -2), labels.flatten())) / 2


def loss_fn(model, video, query, video_msk, query_msk, point, batch):
  out = model(video, query, video_msk, query_msk)
  cls_tgt, reg_tgt = targets(point, batch['windows'])
  logits = out['cls_logits']
  prob = logits.sigmoid()
  p_t = prob * cls_tgt + (1 - prob) * (1 - cls_tgt)
  focal = F.binary_cross_entropy_with_logits(logits, cls_tgt, reduction='none') * (1 - p_t)**2
  loss = focal.mean()                                  # every point valid (T = 75 exactly)
  pos = cls_tgt[..., None].expand_as(reg_tgt).bool()
  loss = loss + 0.2 * (out['reg'] - reg_tgt).abs()[pos].sum() / pos.sum().clamp(min=1)
  # Saliency: sampled NCE, rows and columns, against the positive clip.
  h, q, idx = out['h'], out['query_emb'], torch.arange(BATCH)
  sal, pos_clip = batch['saliency'], batch['pos_clip']
  sim = F.cosine_similarity(h, q[:, None], dim=-1) / 0.07
  sim = sim + torch.where((sal <= sal[idx, pos_clip, None]) & (video_msk > 0), 0.0, -1e30)
  loss = loss - 0.1 * (F.log_softmax(sim, 1)[idx, pos_clip].mean() +
                       F.log_softmax(sim.t(), 1)[pos_clip, idx].mean())
  # Granularity calibration: the CLS after video_map at the positive clip vs the pooled query.
  coll_v = out['coll_v'][:, idx, pos_clip]                                    # (K, B, C)
  coll_q = torch.stack([model.pooling(qk, query_msk) for qk in out['coll_q']])  # (K, B, C)
  loss = loss + 0.1 * info_nce(coll_v, coll_q)
  loss = loss + 0.1 * info_nce(coll_v.transpose(0, 1), coll_q.transpose(0, 1))
  return loss


def official_step(threads: int) -> tuple[Callable[[], float], int]:
  """(one official train step per call, returning the loss; the trainable parameter count),
  the model and batch built once."""
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  ref = load_reference()
  model = ref.R2Tuning().train()
  optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=1e-4)

  rng = np.random.default_rng(0)
  video = torch.from_numpy(rng.standard_normal((BATCH, CLIPS, 4, 50, 768), np.float32))
  query = torch.from_numpy(rng.standard_normal((BATCH, QUERY_TOKENS, 4, 512), np.float32))
  video_msk, query_msk = torch.ones(BATCH, CLIPS), torch.ones(BATCH, QUERY_TOKENS)
  batch = dict(windows=torch.tensor([[[5.0, 15.0]]]).repeat(BATCH, 1, 1),  # clips (10-30 s at 0.5 fps)
               saliency=torch.from_numpy(rng.random((BATCH, CLIPS), np.float32)),
               pos_clip=torch.full((BATCH,), 15))
  point = points(CLIPS)

  def step():
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model, video, query, video_msk, query_msk, point, batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
    optimizer.step()
    return float(loss.detach())

  return step, sum(p.numel() for p in model.parameters())


class JaxvgSteps:
  """`python -m jaxvg.bench --serve_train_steps` in a child process: one jaxvg step per call.

  Its own process, so that the two runtimes' thread pools never run at once (in one process
  they slow each other ≈ 2×); the steps alternate, so the host's drift moves both alike.
  """

  def __init__(self):
    self.child = subprocess.Popen([sys.executable, '-m', 'jaxvg.bench', '--serve_train_steps'],
                                  cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
    self.info = self._reply()  # after compilation and a warm-up step

  def _reply(self) -> dict:
    for line in self.child.stdout:
      if line.startswith(SERVE_PREFIX):
        return json.loads(line[len(SERVE_PREFIX):])
    raise RuntimeError(f'the jaxvg step server exited (code {self.child.wait()}); see its stderr')

  def __call__(self) -> dict:
    self.child.stdin.write('step\n')
    self.child.stdin.flush()
    return self._reply()

  def close(self) -> None:
    self.child.stdin.write('quit\n')
    self.child.stdin.close()
    self.child.wait()


def alternate(step: Callable[[], float], rounds: int) -> dict:
  """Official and jaxvg steps in turn, `rounds` times; the speed-up per round and overall."""
  jaxvg_steps = JaxvgSteps()
  try:
    official, jaxvg = [], []
    for _ in range(rounds):
      official.append(host.timed(step)[1])
      jaxvg.append(jaxvg_steps())
  finally:
    jaxvg_steps.close()
  per_round = [o.wall_s / j['step_s'] for o, j in zip(official, jaxvg)]
  return {'rounds': rounds, 'official_step_s': statistics.median(o.wall_s for o in official),
          'official_steal_fraction': statistics.median(o.steal_fraction for o in official),
          'jaxvg_step_s': statistics.median(j['step_s'] for j in jaxvg),
          'jaxvg_steal_fraction': statistics.median(j['steal_fraction'] for j in jaxvg),
          'jaxvg_compile_s': jaxvg_steps.info['compile_s'],
          'speedup_median_of_rounds': statistics.median(per_round),
          'speedup_min_of_rounds': min(per_round), 'speedup_max_of_rounds': max(per_round)}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--alternate', action='store_true',
                      help='alternate each official step with a jaxvg step (in a child process) '
                      'and report the speed-up per round')
  parser.add_argument('--json', default='')
  args = parser.parse_args(argv)
  step, parameters = official_step(args.threads)
  step()  # warm-up
  result = {'torch': torch.__version__, 'threads': args.threads,
            'trainable_parameters': parameters}
  if args.alternate:
    result.update(alternate(step, args.repeats))
  else:
    samples = [host.timed(step)[1] for _ in range(args.repeats)]
    walls = [s.wall_s for s in samples]
    result.update({'step_s': statistics.median(walls), 'step_s_min': min(walls),
                   'cpu_s_per_step': statistics.median(s.cpu_s for s in samples),
                   'steal_fraction': statistics.median(s.steal_fraction for s in samples)})
  print(json.dumps(result))
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(result, indent=1))
  return result


if __name__ == '__main__':
  main()
