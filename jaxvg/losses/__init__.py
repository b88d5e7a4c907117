"""jaxvg.losses."""
