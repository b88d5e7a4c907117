"""jaxvg: video grounding in JAX/Flax (R²-Tuning, SDST, NST, zero-shot STVG)."""

__version__ = '0.1.0'


def __getattr__(name: str):  # `jaxvg.Predictor` without importing JAX at `import jaxvg`
  if name == 'Predictor':
    from jaxvg.predictor import Predictor
    return Predictor
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
