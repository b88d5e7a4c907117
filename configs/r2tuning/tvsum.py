"""R²-Tuning on TVSum, one domain per run (r2tuning.md §5).

--config configs/r2tuning/tvsum.py:BK   (BK|BT|DS|FM|GA|MS|PK|PR|VT|VU)
"""
from jaxvg import configs

DOMAINS = ('BK', 'BT', 'DS', 'FM', 'GA', 'MS', 'PK', 'PR', 'VT', 'VU')


def get_config(domain: str = 'BK'):
  config = configs.r2tuning_highlight('tvsum', domain, DOMAINS, epochs=500)
  return config
