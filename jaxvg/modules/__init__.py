"""jaxvg.modules."""
