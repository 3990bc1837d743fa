"""A histogram observed a batch at a time, exported exactly as a ``Histogram`` would be.

A ``Histogram.observe`` per event takes a lock twice; over a batch of 500 events that costs
more than the model's predictions. :class:`BatchHistogram` is a custom collector
(prometheus_client's public ``Collector`` API): a child bins a whole batch first (``bisect``:
the first bucket whose upper bound is >= the value, as ``observe`` does) and adds it under
one lock; ``collect`` yields the same samples (buckets, count, sum, created) as a
``Histogram`` with the same name, buckets and observations.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> latency = BatchHistogram("h_seconds", "Latency.", ("pipeline",), (0.1, 1.0), registry)
>>> latency.labels("p").observe_batch([0.05, 0.1, 0.5, 3.0])
>>> [registry.get_sample_value("h_seconds_bucket", {"pipeline": "p", "le": le})
...  for le in ("0.1", "1.0", "+Inf")]
[2.0, 3.0, 4.0]
"""

from __future__ import annotations

import functools
import operator
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString

__all__ = ["BatchHistogram", "BatchHistogramChild"]

# prometheus_client's documented switch for its own families' _created samples.
_CREATED = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in (
    "true", "1", "t")


class BatchHistogramChild:
    """The histogram of one label set."""

    __slots__ = ("_counts", "_lock", "_sum", "created", "upper_bounds")

    def __init__(self, upper_bounds: tuple[float, ...]) -> None:
        self.upper_bounds = upper_bounds
        self._counts = [0] * len(upper_bounds)
        self._sum = 0.0
        self._lock = threading.Lock()
        self.created = time.time()

    def observe_batch(self, values: Sequence[float]) -> None:
        """``observe(v)`` for each value, binned first and added under one lock."""
        if not values:
            return
        bounds = self.upper_bounds
        binned = [0] * len(bounds)
        for value in values:
            binned[bisect_left(bounds, value)] += 1
        with self._lock:
            # In order, as observe() adds them (sum() compensates rounding from 3.12 on).
            self._sum = functools.reduce(operator.add, values, self._sum)
            counts = self._counts
            for bucket, count in enumerate(binned):
                if count:
                    counts[bucket] += count

    def state(self) -> tuple[list[float], float]:
        """(cumulative bucket counts, sum), read together."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        return [float(c) for c in accumulate(counts)], total


class BatchHistogram(Collector):
    """A labelled histogram whose children observe batches; registered on ``registry``."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 buckets: Sequence[float], registry: CollectorRegistry | None = None) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds):
            raise ValueError(f"{name}: buckets not in sorted order")
        if not bounds or bounds[-1] != INF:
            bounds.append(INF)
        self.upper_bounds = tuple(bounds)
        self._les = [floatToGoString(b) for b in bounds]
        self._children: dict[tuple[str, ...], BatchHistogramChild] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> BatchHistogramChild:
        """The child of one label set (created, and exported from now on, at first call)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values}")
        with self._lock:
            child = self._children.get(values)
            if child is None:
                child = self._children[values] = BatchHistogramChild(self.upper_bounds)
        return child

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            children = list(self._children.items())
        for values, child in children:
            cumulative, total = child.state()
            family.add_metric(values, list(zip(self._les, cumulative, strict=True)), total)
            if _CREATED:
                family.add_sample(f"{self.name}_created", dict(zip(self.labelnames, values,
                                                                     strict=True)),
                                  child.created)
        return [family]
