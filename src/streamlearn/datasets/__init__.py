"""Synthetic data sets shipped with streamlearn, generated on demand from a seed.

:mod:`.fraud` makes card transactions whose fraud shows only in each card's history and
changes pattern at a known point (``streamlearn produce fraud:20000 ...`` replays it).
"""

from streamlearn.datasets import fraud

__all__ = ["fraud"]
