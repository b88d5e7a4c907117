"""jaxvg.prepare."""
