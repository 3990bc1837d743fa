"""``streamlearn produce --labels-to``: events without their label, each label sent later.

A labelling process (a click, a chargeback) delivers a label after its event. Here each
event goes out without its label field, and its label record ``{"event_id", "label",
"time"?}``, keyed by the event id, goes to the labels topic ``delay`` seconds of wall clock
after the event: a fixed delay, or a uniform random one per event, seeded so a run repeats.
Labels wait in a heap and are sent as they come due, between events; after the last event
the command waits for the rest.

>>> labels = LabelSchedule(LabelOptions("p.labels", "y", parse_delay("1-3"), seed=0))
>>> event, pending = labels.split({"event_id": "e-0", "x": 1.5, "y": True})
>>> event
{'event_id': 'e-0', 'x': 1.5}
>>> labels.add(pending, sent_at=100.0)
>>> labels.next_due()
102.68...
>>> labels.pop()
(b'e-0', b'{"event_id":"e-0","label":true}')
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.kafka import python_clients
from streamlearn.spec.schema import BadEvent, parse_time
from streamlearn.tools.produce import CLIENT_ID, ReplayOptions, encode_event, with_ids

__all__ = [
    "LabelError",
    "LabelOptions",
    "LabelSchedule",
    "Pending",
    "Sent",
    "parse_delay",
    "replay_with_labels",
    "require_label",
    "send_with_labels",
]

_RANGE = re.compile(r"^\s*([0-9.]+)\s*-\s*([0-9.]+)\s*$")


class LabelError(StreamlearnError):
    """Events cannot be split into events and labels as asked."""


def parse_delay(text: str) -> tuple[float, float]:
    """Seconds ``D`` or a range ``A-B`` as (low, high).

    >>> parse_delay("2.5"), parse_delay("1-5")
    ((2.5, 2.5), (1.0, 5.0))
    >>> parse_delay("5-1")
    Traceback (most recent call last):
    ...
    ValueError: label delay '5-1': expected seconds D or a range A-B with 0 <= A <= B
    """
    problem = ValueError(f"label delay {text!r}: expected seconds D or a range A-B with "
                         "0 <= A <= B")
    match = _RANGE.match(text)
    try:
        low, high = (float(match[1]), float(match[2])) if match else (float(text),) * 2
    except ValueError:
        raise problem from None
    if not (0 <= low <= high and math.isfinite(high)):
        raise problem
    return low, high


@dataclass(frozen=True)
class LabelOptions:
    topic: str
    label_field: str
    delay: tuple[float, float] = (0.0, 0.0)
    """Seconds from an event to its label, uniform between the two (equal: fixed)."""
    seed: int = 0
    time_field: str | None = None
    """Field with the events' own time: a label's ``time`` is the event's plus the delay."""


@dataclass(frozen=True)
class Pending:
    """A label taken out of its event, not yet due."""

    key: bytes
    value: bytes
    delay: float


def require_label(events: Iterable[dict[str, Any]], field: str) -> Iterator[dict[str, Any]]:
    """The events, once the first is seen to have the label ``field`` (else LabelError)."""
    stream = iter(events)
    first = next(stream, None)
    if first is None:
        return stream
    if field not in first:
        shown = ", ".join(sorted(first)[:12])
        raise LabelError(f"--labels-to: the first event has no label field {field!r} to take "
                         f"out (its fields: {shown}); name it with --label-field")
    return itertools.chain([first], stream)


class LabelSchedule:
    """Labels taken out of events, in a heap by the (wall-clock) time they are due."""

    def __init__(self, options: LabelOptions, id_field: str = "event_id") -> None:
        self.options = options
        self.id_field = id_field
        self.unlabelled = 0
        self._rng = random.Random(options.seed)
        self._heap: list[tuple[float, int, bytes, bytes]] = []
        self._order = itertools.count()  # equal due times keep the events' order

    def split(self, event: dict[str, Any]) -> tuple[dict[str, Any], Pending | None]:
        """The event without its label, and the label record (None if it has no label)."""
        field = self.options.label_field
        if field not in event:
            self.unlabelled += 1
            return event, None
        event = dict(event)
        label = event.pop(field)
        event_id = str(event.get(self.id_field))
        delay = self._rng.uniform(*self.options.delay)
        record: dict[str, Any] = {"event_id": event_id, "label": label}
        if self.options.time_field:
            record["time"] = round(self._event_time(event) + delay * 1000)
        return event, Pending(event_id.encode(), encode_event(record), delay)

    def _event_time(self, event: dict[str, Any]) -> float:
        field = self.options.time_field or ""
        # As the worker reads it: the JSON value sent (a pandas Timestamp becomes ISO text).
        value = orjson.loads(encode_event({"t": event.get(field)}))["t"]
        try:
            return parse_time(value, field)
        except BadEvent as exc:
            raise LabelError(f"--time-field: event {event.get(self.id_field)!r}: "
                             f"{exc.detail}") from None

    def add(self, pending: Pending, sent_at: float) -> None:
        """Schedule the label of an event sent at ``sent_at`` (seconds of the clock)."""
        entry = (sent_at + pending.delay, next(self._order), pending.key, pending.value)
        heapq.heappush(self._heap, entry)

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[bytes, bytes]:
        """Key and value of the label due first."""
        _, _, key, value = heapq.heappop(self._heap)
        return key, value


class Producer(Protocol):
    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None
             ) -> Any: ...

    def flush(self) -> Any: ...


@dataclass(frozen=True)
class Sent:
    events: int
    labels: int
    unlabelled: int
    """Events without the label field: sent as they are, with no label record."""


def send_with_labels(
    events: Iterable[dict[str, Any]],
    producer: Producer,
    options: ReplayOptions,
    labels: LabelOptions,
    on_event: Callable[[int], None] = lambda n: None,
    on_label: Callable[[int], None] = lambda n: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Sent:
    """Send events (paced at ``options.rate``) to ``options.topic`` without their label, and
    each label to ``labels.topic`` when it comes due; returns once every label is sent."""
    schedule = LabelSchedule(labels, options.id_field)
    prefix = options.id_prefix or uuid.uuid4().hex[:8]
    stream = itertools.islice(with_ids(events, options.id_field, prefix), options.limit)
    key_field = options.key_field or options.id_field
    sent_labels = 0

    def until(at: float) -> None:
        """Send the labels due by ``at``, each at its time; then wait for ``at``."""
        nonlocal sent_labels
        while (due := schedule.next_due()) is not None and due <= at:
            _sleep_until(due, clock, sleep)
            key, value = schedule.pop()
            producer.send(labels.topic, key=key, value=value)
            sent_labels += 1
            on_label(1)
        if at < math.inf:
            _sleep_until(at, clock, sleep)

    start, sent = clock(), 0
    for sent, event in enumerate(stream, start=1):
        until(start + (sent - 1) / options.rate if options.rate > 0 else clock())
        bare, pending = schedule.split(event)
        key = bare.get(key_field)
        producer.send(options.topic, key=None if key is None else str(key).encode(),
                      value=encode_event(bare))
        on_event(1)
        if pending is not None:
            schedule.add(pending, clock())
    until(math.inf)
    producer.flush()
    return Sent(sent, sent_labels, schedule.unlabelled)


def replay_with_labels(
    events: Iterable[dict[str, Any]],
    bootstrap: str,
    options: ReplayOptions,
    labels: LabelOptions,
    on_event: Callable[[int], None] = lambda n: None,
    on_label: Callable[[int], None] = lambda n: None,
    settings: Settings | None = None,
) -> Sent:
    """:func:`send_with_labels` through a Kafka producer (murmur2 on keys, like Java's), all
    acked on return; ``settings`` gives the security settings (default: this process's)."""
    producer = python_clients.producer(bootstrap, settings, client_id=CLIENT_ID)
    try:
        return send_with_labels(events, producer, options, labels, on_event, on_label)
    finally:
        producer.close()


def _sleep_until(at: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
    wait = at - clock()
    if wait > 0:
        sleep(wait)
