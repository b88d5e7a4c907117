"""OpenAI / Hugging Face CLIP weights -> jaxvg CLIP params, without torch at run time.

Readers: PyTorch zip archives (`torch.save` state dicts, `torch.jit.save` TorchScript modules as
OpenAI released them, HF `pytorch_model.bin`) through `zipfile` + a restricted unpickler, and HF
`*.safetensors`. Every source is first renamed to the OpenAI state-dict layout, then checked
against the shapes the arch expects, then mapped onto the Flax tree (transposes, conv layout).
"""
from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
import pickle
import re
import zipfile
from typing import Any, Callable

import ml_dtypes
import numpy as np

from jaxvg.modules.clip import CLIP_ARCHS, CLIPArch

StateDict = dict[str, np.ndarray]

_STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'HalfStorage': np.float16, 'DoubleStorage': np.float64,
    'BFloat16Storage': ml_dtypes.bfloat16, 'LongStorage': np.int64, 'IntStorage': np.int32,
    'ShortStorage': np.int16, 'CharStorage': np.int8, 'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}


# ----------------------------------------------------------------------------- torch archives

@dataclasses.dataclass(frozen=True)
class _StorageRef:
  dtype: Any
  key: str
  numel: int


@dataclasses.dataclass(frozen=True)
class _TensorRef:
  """A tensor whose bytes are read only once its state-dict name is known (for errors)."""
  storage: _StorageRef
  offset: int
  shape: tuple[int, ...]
  stride: tuple[int, ...]


class _ScriptModule:
  """Stand-in for a TorchScript `__torch__.*` module: keeps its attribute dict."""

  def __setstate__(self, state):
    self.state = state


def _rebuild_tensor(storage, offset, shape, stride, *unused):
  return _TensorRef(storage, int(offset), tuple(shape), tuple(stride))


def _rebuild_parameter(data, *unused):
  return data


class _TorchUnpickler(pickle.Unpickler):
  """Allows only the globals a tensor archive needs; storages become `_StorageRef`s."""
  _GLOBALS: dict[tuple[str, str], Any] = {
      ('collections', 'OrderedDict'): collections.OrderedDict,
      ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
      ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
      ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
  }

  def __init__(self, file, path: str):
    super().__init__(file)
    self._path = path

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) in self._GLOBALS:
      return self._GLOBALS[module, name]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _STORAGE_DTYPES[name]
    if module.startswith('__torch__'):
      return _ScriptModule
    raise pickle.UnpicklingError(
        f'{self._path}: unsupported object {module}.{name} in the archive; expected a state dict '
        'or a TorchScript module of tensors')

  def persistent_load(self, pid: Any) -> _StorageRef:
    if not (isinstance(pid, tuple) and pid and pid[0] == 'storage'):
      raise pickle.UnpicklingError(f'{self._path}: unsupported persistent id {pid!r}')
    _, dtype, key, _, numel = pid
    return _StorageRef(dtype, str(key), int(numel))


def _flatten(obj: Any, prefix: str, out: dict[str, _TensorRef]) -> None:
  """Collects tensors of nested dicts / TorchScript modules under dotted state-dict names."""
  if isinstance(obj, _ScriptModule):
    obj = obj.state
  if isinstance(obj, dict):
    for key, value in obj.items():
      _flatten(value, f'{prefix}{key}.', out)
  elif isinstance(obj, _TensorRef):
    out[prefix[:-1]] = obj


def read_torch_archive(path: str | os.PathLike) -> StateDict:
  """Tensors of a PyTorch zip archive (torch.save state dict or torch.jit.save module) by name."""
  path = str(path)
  try:
    archive = zipfile.ZipFile(path)
  except zipfile.BadZipFile as e:
    raise ValueError(f'{path}: not a PyTorch zip archive, or truncated ({e})') from None
  with archive:
    pickles = [n for n in archive.namelist() if n.endswith('/data.pkl') and n.count('/') == 1]
    if not pickles:
      raise ValueError(f'{path}: no <archive>/data.pkl inside; not a PyTorch zip archive')
    root = pickles[0][:-len('data.pkl')]
    big_endian = archive.read(root + 'byteorder') == b'big' if (
        root + 'byteorder') in archive.namelist() else False
    with archive.open(pickles[0]) as f:
      obj = _TorchUnpickler(f, path).load()
    refs: dict[str, _TensorRef] = {}
    _flatten(obj, '', refs)
    storages: dict[str, bytes] = {}
    tensors = {}
    for name, ref in refs.items():
      key = ref.storage.key
      if key not in storages:
        try:
          storages[key] = archive.read(f'{root}data/{key}')
        except KeyError:
          raise ValueError(f'{path}: tensor {name!r}: storage data/{key} is missing') from None
      tensors[name] = _materialise(storages[key], ref, big_endian, f'{path}: tensor {name!r}')
  return tensors


def _materialise(buffer: bytes, ref: _TensorRef, big_endian: bool, where: str) -> np.ndarray:
  dtype = np.dtype(ref.storage.dtype)
  if big_endian:
    dtype = dtype.newbyteorder('>')
  needed = ref.storage.numel * dtype.itemsize
  if len(buffer) < needed:
    raise ValueError(f'{where}: storage data/{ref.storage.key} is truncated '
                     f'({len(buffer)} of {needed} bytes)')
  flat = np.frombuffer(buffer, dtype, count=ref.storage.numel)
  strides = tuple(s * dtype.itemsize for s in ref.stride)
  view = np.lib.stride_tricks.as_strided(flat[ref.offset:], ref.shape, strides)
  return np.array(view, dtype.newbyteorder('='), order='C')


def read_state_dict(path: str | os.PathLike) -> StateDict:
  """Tensors of a weight file: PyTorch zip archive, safetensors, or an HF model directory."""
  path = pathlib.Path(path)
  if path.is_dir():
    for name in ('model.safetensors', 'pytorch_model.bin'):
      if (path / name).exists():
        return read_state_dict(path / name)
    raise FileNotFoundError(f'{path}: no model.safetensors or pytorch_model.bin inside')
  if not path.exists():
    raise FileNotFoundError(f'{path}: no such CLIP weight file')
  with open(path, 'rb') as f:
    magic = f.read(4)
  if magic.startswith(b'PK'):
    return read_torch_archive(path)
  from safetensors import SafetensorError
  from safetensors.numpy import load_file
  try:
    return load_file(str(path))
  except SafetensorError as e:
    raise ValueError(f'{path}: neither a PyTorch zip archive nor a valid safetensors file '
                     f'(truncated?): {e}') from None


# ----------------------------------------------------------------------------- HF -> OpenAI

_HF_RENAMES = [
    (r'^vision_model\.embeddings\.class_embedding$', 'visual.class_embedding'),
    (r'^vision_model\.embeddings\.patch_embedding\.weight$', 'visual.conv1.weight'),
    (r'^vision_model\.embeddings\.position_embedding\.weight$', 'visual.positional_embedding'),
    (r'^vision_model\.pre_layrnorm\.', 'visual.ln_pre.'),
    (r'^vision_model\.post_layernorm\.', 'visual.ln_post.'),
    (r'^vision_model\.encoder\.layers\.', 'visual.transformer.resblocks.'),
    (r'^text_model\.embeddings\.token_embedding\.', 'token_embedding.'),
    (r'^text_model\.embeddings\.position_embedding\.weight$', 'positional_embedding'),
    (r'^text_model\.final_layer_norm\.', 'ln_final.'),
    (r'^text_model\.encoder\.layers\.', 'transformer.resblocks.'),
    (r'\.layer_norm1\.', '.ln_1.'),
    (r'\.layer_norm2\.', '.ln_2.'),
    (r'\.mlp\.fc1\.', '.mlp.c_fc.'),
    (r'\.mlp\.fc2\.', '.mlp.c_proj.'),
    (r'\.self_attn\.out_proj\.', '.attn.out_proj.'),
]
_HF_PROJECTIONS = {'visual_projection.weight': 'visual.proj',
                   'text_projection.weight': 'text_projection'}
_QKV = re.compile(r'^(.*)\.self_attn\.([qkv])_proj\.(weight|bias)$')


def is_hf_layout(state: StateDict) -> bool:
  return any(k.startswith(('vision_model.', 'text_model.')) for k in state)


def hf_to_openai(state: StateDict) -> tuple[StateDict, dict[str, str]]:
  """Renames an HF CLIPModel state dict to OpenAI names; also returns OpenAI name -> HF name(s).

  q/k/v projections are concatenated into `in_proj_*`; the two projections are transposed
  (HF `Linear` (out, in) vs OpenAI's (in, out) parameter).
  """
  out: StateDict = {}
  sources: dict[str, str] = {}
  qkv: dict[tuple[str, str], dict[str, np.ndarray]] = collections.defaultdict(dict)
  for hf_key, value in state.items():
    if hf_key in _HF_PROJECTIONS:
      key = _HF_PROJECTIONS[hf_key]
      out[key], sources[key] = value.T, hf_key
      continue
    if hf_key == 'logit_scale':
      out[hf_key], sources[hf_key] = value, hf_key
      continue
    m = _QKV.match(hf_key)
    key = m.group(1) if m else hf_key
    for pattern, repl in _HF_RENAMES:
      key = re.sub(pattern, repl, key)
    if m:
      qkv[key, m.group(3)][m.group(2)] = value
    elif key != hf_key:
      out[key], sources[key] = value, hf_key
  for (block, kind), parts in qkv.items():
    hf_block = block.replace('visual.transformer.resblocks.', 'vision_model.encoder.layers.')
    hf_block = hf_block.replace('transformer.resblocks.', 'text_model.encoder.layers.')
    for p in 'qkv':
      if p not in parts:
        raise KeyError(f'missing key {hf_block}.self_attn.{p}_proj.{kind}')
    key = f'{block}.attn.in_proj_{kind}'
    out[key] = np.concatenate([parts['q'], parts['k'], parts['v']], axis=0)
    sources[key] = f'{hf_block}.self_attn.{{q,k,v}}_proj.{kind}'
  return out, sources


# ----------------------------------------------------------------------------- OpenAI -> Flax

def _block_shapes(width: int) -> dict[str, tuple[int, ...]]:
  return {
      'ln_1.weight': (width,), 'ln_1.bias': (width,),
      'attn.in_proj_weight': (3 * width, width), 'attn.in_proj_bias': (3 * width,),
      'attn.out_proj.weight': (width, width), 'attn.out_proj.bias': (width,),
      'ln_2.weight': (width,), 'ln_2.bias': (width,),
      'mlp.c_fc.weight': (4 * width, width), 'mlp.c_fc.bias': (4 * width,),
      'mlp.c_proj.weight': (width, 4 * width), 'mlp.c_proj.bias': (width,),
  }


def openai_shapes(arch: CLIPArch) -> dict[str, tuple[int, ...]]:
  """The OpenAI state-dict keys this arch needs, with their shapes."""
  a = arch
  shapes = {
      'visual.class_embedding': (a.vision_width,),
      'visual.positional_embedding': (a.num_tokens, a.vision_width),
      'visual.conv1.weight': (a.vision_width, 3, a.patch_size, a.patch_size),
      'visual.ln_pre.weight': (a.vision_width,), 'visual.ln_pre.bias': (a.vision_width,),
      'visual.ln_post.weight': (a.vision_width,), 'visual.ln_post.bias': (a.vision_width,),
      'visual.proj': (a.vision_width, a.embed_dim),
      'token_embedding.weight': (a.vocab_size, a.text_width),
      'positional_embedding': (a.context_length, a.text_width),
      'ln_final.weight': (a.text_width,), 'ln_final.bias': (a.text_width,),
      'text_projection': (a.text_width, a.embed_dim),
      'logit_scale': (),
  }
  for tower, layers, width in (('visual.transformer', a.vision_layers, a.vision_width),
                               ('transformer', a.text_layers, a.text_width)):
    for i in range(layers):
      for key, shape in _block_shapes(width).items():
        shapes[f'{tower}.resblocks.{i}.{key}'] = shape
  return shapes


def _flax_path(key: str) -> tuple[tuple[str, ...], Callable[[np.ndarray], np.ndarray]]:
  """OpenAI key -> (path in the Flax param tree, transform of the array)."""
  identity = lambda x: x
  tower, rest = ('visual', key[len('visual.'):]) if key.startswith('visual.') else ('text', key)
  if key == 'logit_scale':
    return ('logit_scale',), identity
  if rest == 'conv1.weight':
    return (tower, 'conv1', 'kernel'), lambda x: x.transpose(2, 3, 1, 0)  # (O,I,H,W) -> (H,W,I,O)
  if rest == 'token_embedding.weight':
    return (tower, 'token_embedding', 'embedding'), identity
  m = re.match(r'^transformer\.resblocks\.(\d+)\.(.*)$', rest)
  if m:
    block = (tower, 'transformer', f'resblocks_{m.group(1)}')
    leaf = m.group(2).replace('attn.in_proj_weight', 'attn.in_proj.weight').replace(
        'attn.in_proj_bias', 'attn.in_proj.bias').replace('mlp.', '')
    *modules, name = leaf.split('.')
    path = block + tuple(modules)
  else:
    *modules, name = rest.split('.')
    path = (tower,) + tuple(modules)
  if name == 'bias':
    return path + ('bias',), identity
  if name == 'weight':
    is_norm = path[-1].startswith('ln_')
    return path + ('scale' if is_norm else 'kernel',), identity if is_norm else (lambda x: x.T)
  return path + (name,), identity  # raw parameters: embeddings, proj (already (in, out))


def openai_to_params(state: StateDict, arch: CLIPArch,
                     sources: dict[str, str] | None = None, where: str = '') -> dict[str, Any]:
  """Checks an OpenAI-layout state dict against `arch` and builds the Flax param tree (fp32).

  Raises KeyError naming the first missing key, ValueError naming a mis-shaped one (in the
  source file's own naming when `sources` maps OpenAI names back to it).
  """
  sources = sources or {}
  prefix = f'{where}: ' if where else ''
  params: dict[str, Any] = {}
  for key, shape in openai_shapes(arch).items():
    name = sources.get(key, key)
    if key not in state:
      raise KeyError(f'{prefix}missing key {name!r} (CLIP arch {arch.name})')
    value = np.asarray(state[key])
    if value.shape != shape:
      raise ValueError(f'{prefix}key {name!r} has shape {value.shape}, expected {shape} '
                       f'(CLIP arch {arch.name}; transposed or another arch?)')
    path, transform = _flax_path(key)
    node = params
    for part in path[:-1]:
      node = node.setdefault(part, {})
    node[path[-1]] = np.array(transform(value), np.float32, order='C')
  return params


def infer_arch(state: StateDict, where: str = '') -> CLIPArch:
  """The arch of an OpenAI-layout state dict, from its shapes (as OpenAI's `build_model`)."""
  prefix = f'{where}: ' if where else ''
  for key in ('visual.conv1.weight', 'visual.positional_embedding', 'text_projection',
              'token_embedding.weight', 'positional_embedding'):
    if key not in state:
      raise KeyError(f'{prefix}missing key {key!r}; cannot infer the CLIP arch '
                     '(ResNet CLIPs are not supported)')
  count = lambda tower: len({k.split('.')[len(tower.split('.')) + 1] for k in state
                             if k.startswith(f'{tower}.resblocks.')})
  vision_width, _, patch, _ = state['visual.conv1.weight'].shape
  grid = round((state['visual.positional_embedding'].shape[0] - 1) ** 0.5)
  text_width, embed_dim = state['text_projection'].shape
  dims = dict(vision_width=vision_width, vision_layers=count('visual.transformer'),
              patch_size=patch, image_size=patch * grid, text_width=text_width,
              text_layers=count('transformer'), embed_dim=embed_dim,
              vocab_size=state['token_embedding.weight'].shape[0],
              context_length=state['positional_embedding'].shape[0])
  for arch in CLIP_ARCHS.values():
    if all(getattr(arch, k) == v for k, v in dims.items()):
      return arch
  return CLIPArch('custom', vision_heads=vision_width // 64, text_heads=text_width // 64, **dims)


def load_clip_params(path: str | os.PathLike, arch: str | CLIPArch | None = None
                     ) -> tuple[CLIPArch, dict[str, Any]]:
  """Reads an OpenAI (.pt) or HF (safetensors / .bin / directory) CLIP file -> (arch, params)."""
  from jaxvg.modules.clip import get_arch
  where = str(path)
  state = read_state_dict(path)
  sources = None
  if is_hf_layout(state):
    try:
      state, sources = hf_to_openai(state)
    except KeyError as e:
      raise KeyError(f'{where}: {e.args[0]}') from None
  arch = infer_arch(state, where) if arch is None else get_arch(arch)
  return arch, openai_to_params(state, arch, sources, where)
