"""A pipeline's derived-feature declaration, checked and compiled once.

>>> from streamlearn import features as f
>>> fs = FeatureSet({"n_10m": f.count("10m"), "avg_1h": f.mean("amount", "1h"),
...                  "prev": f.last("amount")},
...                 raw={"amount": "numeric"}, lateness="1m", ttl="1d")
>>> fs.horizon_ms, fs.buffered
(3600000.0, ('amount',))
>>> FeatureSet({"s": f.sum("country", "1h")}, raw={"country": "categorical"})
Traceback (most recent call last):
...
ValueError: derived feature 's': sum needs a numeric field; 'country' is declared categorical
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streamlearn.features.declare import (
    NUMERIC_KINDS,
    WINDOW_KINDS,
    Duration,
    Feature,
    parse_duration,
)
from streamlearn.features.online import DEFAULT_OPERATOR, PartitionFeatures
from streamlearn.spec.schema import NUMERIC

__all__ = ["DEFAULT_LATENESS", "DEFAULT_MAX_ENTITY_EVENTS", "DEFAULT_TTL", "FeatureSet"]

DEFAULT_LATENESS = "1m"
DEFAULT_TTL = "1d"
DEFAULT_MAX_ENTITY_EVENTS = 1000


class FeatureSet:
    """Derived features by name, with the rules every partition applies."""

    def __init__(
        self,
        derived: Mapping[str, Feature],
        raw: Mapping[str, str],
        *,
        label_field: str | None = None,
        lateness: Duration = DEFAULT_LATENESS,
        ttl: Duration = DEFAULT_TTL,
        max_events: int = DEFAULT_MAX_ENTITY_EVENTS,
    ) -> None:
        self.derived = dict(derived)
        self.label_field = label_field
        self.lateness_ms = parse_duration(lateness)
        self.ttl_ms = parse_duration(ttl)
        self.max_events = max_events
        buffered: list[str] = []
        self.windowed: list[tuple[str, str, int, float]] = []
        self.lasts: list[tuple[str, int]] = []
        self.since_previous: list[str] = []
        self.transforms: list[tuple[str, Callable[[dict[str, Any]], Any]]] = []
        for name, feature in self.derived.items():
            self._check(name, feature, raw)
            index = -1
            if feature.field is not None:
                if feature.field not in buffered:
                    buffered.append(feature.field)
                index = buffered.index(feature.field)
            if feature.kind in WINDOW_KINDS:
                self.windowed.append((name, feature.kind, index, feature.window_ms or 0.0))
            elif feature.kind == "last":
                self.lasts.append((name, index))
            elif feature.kind == "since_previous":
                self.since_previous.append(name)
            else:
                assert feature.fn is not None
                self.transforms.append((name, feature.fn))
        self.buffered = tuple(buffered)
        self.horizon_ms = max((w for *_, w in self.windowed), default=0.0)
        if max_events < 1:
            raise ValueError("max_entity_events must be at least 1")
        if self.ttl_ms < self.horizon_ms + self.lateness_ms:
            raise ValueError(
                f"entity_ttl ({self.ttl_ms:g} ms) must cover the longest window plus the "
                f"lateness ({self.horizon_ms + self.lateness_ms:g} ms)"
            )

    def _check(self, name: str, feature: Feature, raw: Mapping[str, str]) -> None:
        if not isinstance(feature, Feature):
            raise ValueError(
                f"derived feature {name!r} must be declared with streamlearn.features "
                f"(e.g. features.mean('amount', '1h')), not {feature!r}"
            )
        if name in raw:
            raise ValueError(f"derived feature {name!r} has the name of a declared field")
        field = feature.field
        if field is None:
            return
        if field == self.label_field:
            raise ValueError(f"derived feature {name!r} may not use the label {field!r}")
        if field not in raw:
            raise ValueError(
                f"derived feature {name!r} uses {field!r}, which is not a declared feature"
            )
        if feature.kind in NUMERIC_KINDS and raw[field] != NUMERIC:
            raise ValueError(
                f"derived feature {name!r}: {feature.kind} needs a numeric field; "
                f"{field!r} is declared {raw[field]}"
            )

    def __bool__(self) -> bool:
        return bool(self.derived)

    def partition(self, partition: int = 0, operator: str = DEFAULT_OPERATOR
                  ) -> PartitionFeatures:
        """Fresh state for one input partition (of the stage named ``operator``)."""
        return PartitionFeatures(self, partition, operator)

    def describe(self) -> list[Any]:
        """Everything the values depend on, for the pipeline's fingerprint."""
        return [
            [[name, *f.describe()] for name, f in self.derived.items()],
            self.lateness_ms, self.ttl_ms, self.max_events,
        ]
