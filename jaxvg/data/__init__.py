"""jaxvg.data."""
