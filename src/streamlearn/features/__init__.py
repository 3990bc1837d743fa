"""Derived features: per-entity windowed aggregates, identical online and offline.

Declare them in the pipeline with these functions (``from streamlearn import features as
f``): ``f.count("10m")``, ``f.sum/mean/min/max/std("amount", "1h")``,
``f.distinct("merchant", "1d")``, ``f.last("amount")``, ``f.since_previous()`` and
``f.transform(callable)``. The worker computes them per partition
(:mod:`streamlearn.features.online`); :func:`streamlearn.features.offline.compute` gives the
same values over a pandas DataFrame.
"""

from streamlearn.features.declare import (
    Feature,
    count,
    distinct,
    last,
    max,
    mean,
    min,
    since_previous,
    std,
    sum,
    transform,
)
from streamlearn.features.featureset import FeatureSet

__all__ = [
    "Feature",
    "FeatureSet",
    "count",
    "distinct",
    "last",
    "max",
    "mean",
    "min",
    "since_previous",
    "std",
    "sum",
    "transform",
]
