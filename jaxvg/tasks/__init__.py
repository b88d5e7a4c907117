"""jaxvg.tasks."""
