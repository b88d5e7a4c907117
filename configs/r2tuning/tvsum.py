"""R²-Tuning on TVSum, one domain per run.

--config configs/r2tuning/tvsum.py:BK   (BK|BT|DS|FM|GA|MS|PK|PR|VT|VU)
"""
from jaxvg.projects.r2tuning import config as r2tuning

DOMAINS = ('BK', 'BT', 'DS', 'FM', 'GA', 'MS', 'PK', 'PR', 'VT', 'VU')


def get_config(domain: str = 'BK'):
  config = r2tuning.highlight('tvsum', domain, DOMAINS, epochs=500)
  return config
