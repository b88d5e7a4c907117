"""jaxvg.evaluation."""
