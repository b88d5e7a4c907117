"""jaxvg.models."""
