"""``streamlearn produce``: replay a source into a topic at a given rate, with event ids."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from streamlearn.config import Settings
from streamlearn.kafka import python_clients

__all__ = ["CLIENT_ID", "ReplayOptions", "encode_event", "replay", "with_ids"]

CLIENT_ID = "streamlearn-produce"


@dataclass(frozen=True)
class ReplayOptions:
    topic: str
    rate: float = 0.0
    """Events per second; 0 sends as fast as the producer allows."""
    limit: int | None = None
    key_field: str | None = None
    """Field whose value becomes the record key; default: the event id."""
    id_field: str = "event_id"
    id_prefix: str = ""
    """Prefix of generated event ids; default: a fresh run id, so replays never collide."""


def with_ids(events: Iterable[dict[str, Any]], field: str, prefix: str) -> Iterator[dict]:
    """Add ``field`` (``<prefix>-<n>``) to events that lack it, keeping the field order.

    >>> list(with_ids([{"a": 1}, {"event_id": "x", "a": 2}], "event_id", "run"))
    [{'a': 1, 'event_id': 'run-0'}, {'event_id': 'x', 'a': 2}]
    """
    for n, event in enumerate(events):
        if field not in event:
            event = {**event, field: f"{prefix}-{n}"}
        yield event


def _json_default(value: Any) -> Any:
    # pandas reads date columns as Timestamps, which orjson does not know: ISO 8601 text.
    if type(value).__name__ == "NaTType":  # pandas' missing timestamp
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_event(event: dict[str, Any]) -> bytes:
    """An event as JSON bytes, as sent; numpy values and timestamps included.

    >>> import pandas as pd
    >>> encode_event({"at": pd.Timestamp("2026-01-02 03:04"), "n": float("nan"), "t": pd.NaT})
    b'{"at":"2026-01-02T03:04:00","n":null,"t":null}'
    """
    return orjson.dumps(event, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _pace(rate: float) -> Callable[[int], None]:
    """Sleep so that the n-th event leaves no earlier than n / rate seconds after start."""
    if rate <= 0:
        return lambda n: None
    start = time.perf_counter()

    def wait(n: int) -> None:
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)

    return wait


def replay(
    events: Iterable[dict[str, Any]],
    bootstrap: str,
    options: ReplayOptions,
    on_sent: Callable[[int], None] = lambda n: None,
    settings: Settings | None = None,
) -> int:
    """Send events as JSON to ``options.topic``; returns how many were sent (all acked).

    ``settings`` gives the security settings (default: this process's)."""
    prefix = options.id_prefix or uuid.uuid4().hex[:8]
    stream = itertools.islice(with_ids(events, options.id_field, prefix), options.limit)
    key_field = options.key_field or options.id_field
    producer = python_clients.producer(bootstrap, settings, client_id=CLIENT_ID)
    wait = _pace(options.rate)
    sent = 0
    try:
        for sent, event in enumerate(stream, start=1):
            wait(sent - 1)
            key = event.get(key_field)
            producer.send(
                options.topic,
                key=None if key is None else str(key).encode(),
                value=encode_event(event),
            )
            on_sent(1)
        producer.flush()
    finally:
        producer.close()
    return sent
