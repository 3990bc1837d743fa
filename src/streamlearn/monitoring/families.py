"""The catalog's families built on one registry, looked up by catalog name and type.

Views (``monitoring.views``) take their families from here, by the names of
``monitoring.catalog``; asking for a family under the wrong type fails when the view is
bound, not at the first inc.
"""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

from streamlearn.monitoring.batch_histogram import BatchHistogram
from streamlearn.monitoring.catalog import CATALOG

__all__ = ["Families"]

C = TypeVar("C", bound=Collector)


class Families:
    """Every family of :data:`~streamlearn.monitoring.catalog.CATALOG`, registered (in the
    catalog's order) on ``registry`` under ``<prefix>_<name>``."""

    def __init__(self, registry: CollectorRegistry, prefix: str = "streamlearn") -> None:
        self.by_name: dict[str, Collector] = {
            metric.name: metric.build(f"{prefix}_{metric.name}", registry) for metric in CATALOG
        }

    def counter(self, name: str) -> Counter:
        return self._get(name, Counter)

    def gauge(self, name: str) -> Gauge:
        return self._get(name, Gauge)

    def histogram(self, name: str) -> Histogram:
        return self._get(name, Histogram)

    def batch_histogram(self, name: str) -> BatchHistogram:
        return self._get(name, BatchHistogram)

    def _get(self, name: str, kind: type[C]) -> C:
        family = self.by_name[name]
        if not isinstance(family, kind):
            raise TypeError(f"metric {name!r} is a {type(family).__name__}, not a "
                            f"{kind.__name__}")
        return family
