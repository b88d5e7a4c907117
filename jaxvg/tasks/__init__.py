"""Built-in tasks; importing this package registers them (see jaxvg.registry.get_task)."""
from jaxvg.tasks import r2tuning  # noqa: F401
