"""One folder per system: what belongs to it alone (model, losses, post-processing, weight
conversion, fused kernels, config presets, its `task.py`). Shared code lives by layer in
`jaxvg/modules`, `jaxvg/data`, `jaxvg/train`, `jaxvg/evaluation`, `jaxvg/clip`."""
