"""R²-Tuning on YouTube Highlights, one domain per run (r2tuning.md §5).

--config configs/r2tuning/youtube_highlights.py:dog   (dog|gymnastics|parkour|skating|skiing|surfing)
"""
from jaxvg import configs

DOMAINS = ('dog', 'gymnastics', 'parkour', 'skating', 'skiing', 'surfing')


def get_config(domain: str = 'dog'):
  config = configs.r2tuning_highlight('youtube_highlights', domain, DOMAINS, epochs=200)
  return config
