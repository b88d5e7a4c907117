"""jaxvg.bench: the benchmark suites (`python -m jaxvg.bench`).

Imports nothing heavy, so that `benchmarks/torch_reference_step.py` can read the protocol of
`--serve_train_steps` without loading JAX into the PyTorch process.
"""

SERVE_PREFIX = 'jaxvg-train-step '  # marks the JSON reply lines of `--serve_train_steps`
