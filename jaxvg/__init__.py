"""jaxvg: video grounding in JAX/Flax (R²-Tuning, SDST, NST, zero-shot STVG)."""

__version__ = '0.1.0'
