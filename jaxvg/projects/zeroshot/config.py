"""Config presets of the zero-shot system; `configs/zeroshot/<dataset>.py` start from `base()`."""
from __future__ import annotations

import ml_collections

from jaxvg.projects.zeroshot.pipeline import MODES, GroundingConfig

# Backend presets: how the STVG code drives each MLLM (run_hcstvg2.sh).
BACKENDS = {
    # LLaVA-OneVision (SigLIP + Qwen2): qwen_1_5 template, token −3 (<|im_start|>), yes/no as
    # looked up ('yes' = 9693, 'no' = 2152 in Qwen2). Native pooling (stride 2, 14×14 per frame):
    # the script's commented block names stride 5 (6×6), set model.overrides.pool_stride = 5.
    'onevision': dict(template='qwen_1_5', token_index=-3, gti_tokens=(-6, -5, -4, -3, -2, -1),
                      overrides={}),
    # LLaVA-NeXT-Video-7B (CLIP + Vicuna): vicuna_v1, token −5 ('▁A' of ASSISTANT:), average
    # pooling stride 4 after the projector (the fork's order), no newline token.
    'nextvideo': dict(template='vicuna_v1', token_index=-5, gti_tokens=(-6, -5, -4, -3, -2, -1),
                      overrides=dict(pool_mode='average', pool_stride=4,
                                     pool_before_projector=False, newline=False)),
}


def base(backend: str = 'onevision', mode: str = 'full') -> ml_collections.ConfigDict:
  if backend not in BACKENDS:
    raise ValueError(f'backend must be one of {sorted(BACKENDS)}, got {backend!r}')
  if mode not in MODES:
    raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
  preset = BACKENDS[backend]
  c = ml_collections.ConfigDict()
  c.task = 'zeroshot'
  c.seed = 0

  c.model = ml_collections.ConfigDict()
  c.model.backend = backend
  c.model.folder = ''                 # HF folder: config.json, *.safetensors, tokenizer.json
  c.model.dtype = 'float32'           # 'bfloat16' for 7B backends (softmax and norms stay f32)
  c.model.remat = False               # recompute decoder blocks in LRA's backward pass
  # The STVG fork's knobs over the folder's config.json (None = as config.json says).
  c.model.overrides = ml_collections.ConfigDict(
      {'pool_mode': None, 'pool_stride': None, 'pool_before_projector': None, 'newline': None,
       **preset['overrides']})

  g = GroundingConfig()
  c.grounding = ml_collections.ConfigDict()
  c.grounding.template = preset['template']
  c.grounding.token_index = preset['token_index']
  # GTI candidates (paper §3.2; the template tokens after the question), () = fixed token.
  c.grounding.gti_tokens = preset['gti_tokens'] if mode == 'full' else ()
  c.grounding.layer_start, c.grounding.layer_stop = g.layers   # the code's [-26:-6]
  c.grounding.heads = ()              # () = all query heads
  c.grounding.answer_tokens = g.answer_tokens
  c.grounding.mode = mode             # base | focus_attr | focus_act | full (paper's DSTH)
  c.grounding.lra_steps = 1           # paper default (App. 7.2); the script uses 2
  c.grounding.lra_lr = g.lra_lr
  c.grounding.lra_beta = g.lra_beta
  c.grounding.tas = mode == 'full'    # paper §3.4; not in the released code
  c.grounding.reread_full_query = False   # paper Alg. 1 re-reads with Q; the code the sub-query
  c.grounding.frames_thre = g.frames_thre
  c.grounding.prompt_bucket = 4096    # covers 20 frames x 196 tokens + text

  c.data = ml_collections.ConfigDict()
  c.data.dataset = 'hcstvg'
  c.data.split = 'test'
  c.data.anno_dir = ''
  c.data.data_dir = ''                # holds dino_sam2_proposals/
  c.data.videos_dir = ''
  c.data.num_frames = 20              # INPUT.SAMPLE_FRAMES
  c.data.proposal_frame_unit = 1      # raw frame = proposal frame number x this
  c.data.decompositions = ''          # gpt4_decompose_attr_action.json ('' = full query)
  c.data.max_records = 0              # 0 = all
  c.data.synthetic_root = ''
  c.data.synthetic_size = 'default'
  return c


def benchmark(dataset: str, split: str, arg: str = '') -> ml_collections.ConfigDict:
  """`base` on one benchmark split; `arg` is the config file's 'backend,mode' argument
  (defaults: onevision, full)."""
  backend, _, mode = (arg or 'onevision,full').partition(',')
  config = base(backend or 'onevision', mode or 'full')
  config.data.dataset = dataset
  config.data.split = split
  return config


def grounding_config(config: ml_collections.ConfigDict) -> GroundingConfig:
  g = config.grounding
  return GroundingConfig(
      template=g.template, token_index=g.token_index, gti_tokens=tuple(g.gti_tokens),
      layers=(g.layer_start, g.layer_stop),
      heads=tuple(g.heads) or None, answer_tokens=tuple(g.answer_tokens), mode=g.mode,
      lra_steps=g.lra_steps, lra_lr=g.lra_lr, lra_beta=g.lra_beta, tas=g.tas,
      reread_full_query=g.reread_full_query, frames_thre=g.frames_thre,
      prompt_bucket=g.prompt_bucket)
