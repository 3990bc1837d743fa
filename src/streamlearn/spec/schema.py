"""Typed events: the fields a pipeline declares, and checking one decoded event against them.

A pipeline declares each feature it uses as ``numeric``, ``categorical`` or ``boolean`` (and
the label's type). Checking an event yields the model's input ``x`` and the label, or raises
:class:`BadEvent` naming the field, so one bad event is dead-lettered alone:

- JSON ``null`` or a missing feature is *absent* (left out of ``x``; River models accept it);
- ``numeric`` takes JSON numbers only: ``true`` is not a number;
- ``categorical`` takes strings (an integer is turned into its string, so ``7`` and ``"7"``
  are the same category); ``boolean`` takes ``true``/``false`` only;
- an object or array where a scalar belongs is ``bad_type``;
- fields not declared are ignored (and counted), so a producer adding fields never grows
  the model.

>>> schema = Schema({"amount": "numeric", "country": "categorical"}, label=("y", "boolean"))
>>> schema.check({"amount": 3, "country": "FR", "y": True, "extra": 1})
({'amount': 3, 'country': 'FR'}, True, 1)
>>> schema.check({"amount": None, "y": False})
({}, False, 0)
>>> schema.check({"amount": True, "y": False})
Traceback (most recent call last):
...
streamlearn.spec.schema.BadEvent: bad_type: field 'amount' is declared numeric, got a JSON ...
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "BOOLEAN", "CATEGORICAL", "NUMERIC", "TYPES", "BadEvent", "Schema", "check_types", "parse_time",
]

NUMERIC = "numeric"
CATEGORICAL = "categorical"
BOOLEAN = "boolean"
TYPES = (NUMERIC, CATEGORICAL, BOOLEAN)

_JSON_NAMES = {
    bool: "a JSON boolean", int: "a JSON number", float: "a JSON number", str: "a JSON string",
    dict: "a nested object", list: "an array",
}
_MAX_SHOWN = 40
# Types taken as they are; anything else goes through coerce() (a categorical int, or an error).
_AS_IS = {NUMERIC: frozenset((int, float)), CATEGORICAL: frozenset((str,)),
          BOOLEAN: frozenset((bool,))}


class BadEvent(ValueError):
    """An event that cannot be processed; ``reason`` is a short metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def check_types(declared: Mapping[str, str], what: str) -> None:
    """Raise ValueError unless every declared type is one of :data:`TYPES`."""
    for name, kind in declared.items():
        if kind not in TYPES:
            raise ValueError(
                f"{what} {name!r} has type {kind!r}; use one of {', '.join(TYPES)}"
            )


def _bad_type(name: str, kind: str, value: Any) -> BadEvent:
    shown = repr(value)
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 3] + "..."
    got = _JSON_NAMES.get(type(value), type(value).__name__)
    return BadEvent("bad_type", f"field {name!r} is declared {kind}, got {got} ({shown})")


def coerce(name: str, kind: str, value: Any) -> Any:
    """``value`` as the model sees it, or :class:`BadEvent` (``value`` is not None).

    >>> coerce("zip", "categorical", 75001), coerce("n", "numeric", 2.5)
    ('75001', 2.5)
    """
    t = type(value)
    if kind == NUMERIC:
        if t is float or t is int:
            return value
    elif kind == CATEGORICAL:
        if t is str:
            return value
        if t is int:
            return str(value)
    elif t is bool:
        return value
    raise _bad_type(name, kind, value)


class Schema:
    """A pipeline's typed fields, compiled for a fast check per event."""

    __slots__ = ("_fields", "_known", "label")

    def __init__(
        self,
        features: Mapping[str, str],
        label: tuple[str, str] | None = None,
        other: tuple[str, ...] = (),
    ) -> None:
        check_types(features, "feature")
        if label is not None:
            check_types({label[0]: label[1]}, "label")
        self._fields = tuple((name, kind, _AS_IS[kind]) for name, kind in features.items())
        self.label = label
        self._known = frozenset((*features, *other, *((label[0],) if label else ())))

    def check(self, event: dict[str, Any]) -> tuple[dict[str, Any], Any, int]:
        """``(x, label, undeclared)``; the label is None when the spec has no label field.

        Raises :class:`BadEvent` for a wrong type or a missing label.
        """
        x: dict[str, Any] = {}
        get = event.get
        for name, kind, as_is in self._fields:
            value = get(name)
            if value is not None:
                x[name] = value if type(value) in as_is else coerce(name, kind, value)
        y = None
        if self.label is not None:
            name, kind = self.label
            value = event.get(name)
            if value is None:
                raise BadEvent("missing_field", f"event lacks the label field {name!r}")
            y = value if type(value) in _AS_IS[kind] else coerce(name, kind, value)
        return x, y, len(event.keys() - self._known)


def parse_time(value: Any, field: str) -> float:
    """Event time in epoch milliseconds from a number (ms) or an ISO-8601 string.

    A string without a zone is read as UTC.

    >>> parse_time(1767225600000, "t"), parse_time("2026-01-01T00:00:01", "t")
    (1767225600000.0, 1767225601000.0)
    >>> parse_time("yesterday", "t")
    Traceback (most recent call last):
    ...
    streamlearn.spec.schema.BadEvent: bad_time: time field 't' is not epoch milliseconds or ...
    """
    t = type(value)
    if t is int or t is float:
        if math.isfinite(value):
            return float(value)
    elif t is str:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.timestamp() * 1000.0
    elif value is None:
        raise BadEvent("missing_field", f"event lacks the time field {field!r}")
    shown = repr(value)[:_MAX_SHOWN]
    raise BadEvent("bad_time",
                   f"time field {field!r} is not epoch milliseconds or ISO-8601: {shown}")
