"""Zero-shot STVG on vidstg (test) with a frozen multimodal LLM.

  python -m jaxvg.main --config configs/zeroshot/vidstg.py[:backend,mode] --workdir runs/zs \
      --mode predict --config.model.folder=/path/to/llava-onevision-qwen2-7b-ov-hf \
      --config.data.anno_dir=... --config.data.data_dir=... --config.data.videos_dir=...

backend: onevision (default) | nextvideo; mode: full (default, the paper's DSTH + TAS) | base |
focus_attr | focus_act (the released script's modes).
"""
from jaxvg.projects.zeroshot import config as zeroshot


def get_config(arg: str = ''):
  return zeroshot.benchmark('vidstg', 'test', arg)
