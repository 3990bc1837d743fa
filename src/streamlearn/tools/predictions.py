"""Reading predictions back: what a consumer of ``<name>.predictions`` does.

Delivery is at-least-once, so a consumer keys predictions by ``event_id``; the first copy
wins (a duplicate after a crash carries the same event and model state).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from streamlearn.config import Settings
from streamlearn.tools.tail import tail

__all__ = ["collect_predictions", "prequential_accuracy"]


def collect_predictions(
    bootstrap: str,
    topic: str,
    wanted: Iterable[str],
    timeout: float,
    on_new: Callable[[], None] = lambda: None,
    alive: Callable[[], bool] = lambda: True,
    settings: Settings | None = None,
) -> dict[str, dict[str, Any]]:
    """Predictions for the ``wanted`` event ids, deduplicated, until all came or time ran out."""
    wanted = set(wanted)
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(wanted) and time.monotonic() < deadline and alive():
        for record in tail(bootstrap, topic, from_beginning=True, idle_timeout=2.0,
                           settings=settings):
            prediction = orjson.loads(record.value or b"null")
            event_id = prediction.get("event_id") if isinstance(prediction, dict) else None
            if event_id in wanted and event_id not in found:
                found[event_id] = prediction
                on_new()
            if len(found) == len(wanted) or time.monotonic() > deadline:
                break
    return found


def prequential_accuracy(
    labels: Mapping[str, Any], predictions: Mapping[str, Mapping[str, Any]]
) -> float:
    """Share of labelled events whose served prediction was right (None predictions skipped).

    >>> prequential_accuracy({"a": True, "b": False}, {"a": {"prediction": True},
    ...                                                "b": {"prediction": True}})
    0.5
    """
    scored = [
        predictions[i]["prediction"] == y
        for i, y in labels.items()
        if i in predictions and predictions[i]["prediction"] is not None
    ]
    return sum(scored) / len(scored) if scored else 0.0
