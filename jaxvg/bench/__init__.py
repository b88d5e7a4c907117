"""jaxvg.bench."""
