"""Systems built on the jaxvg engine, one package each."""
