"""jaxvg.convert."""
