"""R²-Tuning on YouTube Highlights, one domain per run.

--config configs/r2tuning/youtube_highlights.py:dog   (dog|gymnastics|parkour|skating|skiing|surfing)
"""
from jaxvg.projects.r2tuning import config as r2tuning

DOMAINS = ('dog', 'gymnastics', 'parkour', 'skating', 'skiing', 'surfing')


def get_config(domain: str = 'dog'):
  config = r2tuning.highlight('youtube_highlights', domain, DOMAINS, epochs=200)
  return config
