"""jaxvg.train."""
