"""The declaration of derived features: a few words per feature.

Windowed aggregates are per entity (the pipeline's ``key_field``) over event time; the
window of an event at time ``t`` holds the entity's earlier-arrived events with a time in
``(t - window, t]`` *and the event itself*. ``last`` and ``since_previous`` look at the
entity's previous event: the latest earlier-arrived one with a time at or before ``t``.

>>> from streamlearn import features as f
>>> f.mean("amount", "1h")
Feature(kind='mean', field='amount', window_ms=3600000.0, by=None)
>>> f.count("1h", by="merchant").by
'merchant'
>>> f.count("10m").window_ms, f.since_previous().kind
(600000.0, 'since_previous')
>>> parse_duration("90s"), parse_duration("1.5h"), parse_duration(250)
(90000.0, 5400000.0, 250.0)
>>> parse_duration("soon")
Traceback (most recent call last):
...
ValueError: duration 'soon' must be milliseconds or a number with a unit: ms, s, m, h, d
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as _field
from typing import Any

__all__ = [
    "NUMERIC_KINDS",
    "WINDOW_KINDS",
    "Feature",
    "count",
    "distinct",
    "last",
    "max",
    "mean",
    "min",
    "parse_duration",
    "since_previous",
    "std",
    "sum",
    "transform",
]

WINDOW_KINDS = frozenset({"count", "sum", "mean", "min", "max", "std", "distinct"})
NUMERIC_KINDS = frozenset({"sum", "mean", "min", "max", "std"})
_UNITS_MS = {"ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3, "d": 86400e3}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")

Duration = str | int | float | dt.timedelta


def parse_duration(value: Duration) -> float:
    """Milliseconds of ``"10m"``, ``"1.5h"``, a ``timedelta`` or a number of milliseconds."""
    if isinstance(value, dt.timedelta):
        return value.total_seconds() * 1000.0
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"duration {value!r} must be milliseconds or a number with a unit: ms, s, m, h, d"
        )
    return float(match[1]) * _UNITS_MS[match[2]]


@dataclass(frozen=True)
class Feature:
    """One derived feature; build it with the functions below, not directly."""

    kind: str
    field: str | None = None
    window_ms: float | None = None
    by: str | None = None
    """The entity: None for the pipeline's key field, else another field of the event."""
    fn: Callable[[dict[str, Any]], Any] | None = _field(default=None, repr=False, compare=False)

    def describe(self) -> list[Any]:
        """What the feature computes, for the spec fingerprint (a callable by its name)."""
        fn = self.fn and f"{self.fn.__module__}.{self.fn.__qualname__}"
        return [self.kind, self.field, self.window_ms, self.by, fn]


def _windowed(kind: str, field_name: str | None, window: Duration, by: str | None) -> Feature:
    window_ms = parse_duration(window)
    if window_ms <= 0:
        raise ValueError(f"{kind}: the window must be longer than 0")
    return Feature(kind, field_name, window_ms, by)


# by="merchant": per merchant instead of per key_field; the events are re-keyed through
# the topic <name>.by-merchant.


def count(window: Duration, *, by: str | None = None) -> Feature:
    """Number of the entity's events in the window (the current one included)."""
    return _windowed("count", None, window, by)


def sum(field: str, window: Duration, *, by: str | None = None) -> Feature:
    """Sum of a numeric field over the window (``math.fsum``: exact, order-independent)."""
    return _windowed("sum", field, window, by)


def mean(field: str, window: Duration, *, by: str | None = None) -> Feature:
    """Mean of a numeric field over the window (absent values are skipped)."""
    return _windowed("mean", field, window, by)


def min(field: str, window: Duration, *, by: str | None = None) -> Feature:
    """Smallest value of a numeric field over the window."""
    return _windowed("min", field, window, by)


def max(field: str, window: Duration, *, by: str | None = None) -> Feature:
    """Largest value of a numeric field over the window."""
    return _windowed("max", field, window, by)


def std(field: str, window: Duration, *, by: str | None = None) -> Feature:
    """Sample standard deviation (``river.stats.Var``) of a numeric field over the window."""
    return _windowed("std", field, window, by)


def distinct(field: str, window: Duration, *, by: str | None = None) -> Feature:
    """Number of distinct values of a field over the window."""
    return _windowed("distinct", field, window, by)


def last(field: str, *, by: str | None = None) -> Feature:
    """The field's value in the entity's previous event (absent for its first event)."""
    return Feature("last", field, by=by)


def since_previous(*, by: str | None = None) -> Feature:
    """Seconds of event time since the entity's previous event (absent for its first)."""
    return Feature("since_previous", by=by)


def transform(fn: Callable[[dict[str, Any]], Any]) -> Feature:
    """A value computed from the event alone by ``fn(event)`` (the label is removed first).

    ``fn`` returns a number, a string, a boolean or None (absent).
    """
    if not callable(fn):
        raise ValueError("transform needs a callable of the event")
    return Feature("transform", fn=fn)
