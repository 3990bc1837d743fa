"""Reading a topic with kafka-python and no consumer group: to its end, or from an offset on.

No group means nothing here ever moves a worker's committed offsets. Readers assign every
partition themselves and seek to offsets they fetched first (:func:`open_topic`), so what
they report ("N records already there") and where they start agree exactly. Records are
read ``read_committed`` (:func:`streamlearn.kafka.python_clients.consumer`).

The worker's stores read to the end with confluent-kafka instead, as the rest of the worker
(:func:`streamlearn.kafka.snapshots.records`, also used by ``models`` and ``report``, which
read what the worker wrote): librdkafka is the faster client on the big topics a restore
reads (docs/performance.md compares the libraries).

>>> record = TopicRecord(0, 7, b"k", b'{"a": 1}', [("streamlearn.error.reason", b"bad_type")])
>>> print(record.render())
[0@7] {"a": 1}
    streamlearn.error.reason: bad_type
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.kafka import python_clients

__all__ = ["OpenTopic", "TopicNotFound", "TopicRecord", "open_topic", "read_to_end"]

HEADER_INDENT = "    "
_POLL_MS = 500
_STALLED_S = 30.0


class TopicNotFound(StreamlearnError):
    """The topic to read does not exist on the cluster."""


@dataclass(frozen=True)
class TopicRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @classmethod
    def of(cls, message: Any) -> TopicRecord:
        """The record of a kafka-python ``ConsumerRecord``."""
        return cls(message.partition, message.offset, message.key, message.value,
                   list(message.headers or []))

    @property
    def text(self) -> str:
        """The value as text (undecodable bytes replaced), ``null`` for a tombstone."""
        return self.value.decode("utf-8", "replace") if self.value is not None else "null"

    def render(self) -> str:
        """``[partition@offset] value``, then each header on its own indented line."""
        lines = [f"[{self.partition}@{self.offset}] {self.text}"]
        lines += [
            f"{HEADER_INDENT}{k}: {v.decode('utf-8', 'replace')}" for k, v in self.headers
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class OpenTopic:
    """A consumer assigned every partition of a topic, with their offsets when opened."""

    consumer: KafkaConsumer
    first: dict[TopicPartition, int]
    end: dict[TopicPartition, int]

    @property
    def held(self) -> int:
        """How many records the topic held when opened."""
        return sum(self.end[tp] - self.first[tp] for tp in self.first)


@contextlib.contextmanager
def open_topic(bootstrap: str, topic: str, settings: Settings | None = None,
               **overrides: Any) -> Iterator[OpenTopic]:
    """Assign every partition of ``topic`` to a fresh consumer (``overrides``: its kafka-python
    arguments); closed on exit. Raises :class:`TopicNotFound`."""
    consumer = python_clients.consumer(bootstrap, settings, **overrides)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise TopicNotFound(f"no topic {topic!r} at {bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        yield OpenTopic(consumer, consumer.beginning_offsets(tps), consumer.end_offsets(tps))
    finally:
        consumer.close()


def read_to_end(bootstrap: str, topic: str, settings: Settings | None = None
                ) -> Iterator[TopicRecord]:
    """Every record ``topic`` holds now, oldest first per partition, then stop.

    Reads ``read_committed``, as the pipeline's own consumers do (librdkafka's default):
    records of aborted or still open transactions are not returned. Stops once its position
    on every partition has reached the end offset (the last stable offset) fetched when
    reading starts, so records that arrive later are not read, and a partition that ends
    in transaction markers (never delivered) does not stall it. Raises
    :class:`TopicNotFound`, or :class:`StreamlearnError` if it makes no progress for 30 s.
    """
    with open_topic(bootstrap, topic, settings) as opened:
        consumer, first, end = opened.consumer, opened.first, opened.end
        pending = {tp for tp in first if end[tp] > first[tp]}
        for tp in first:
            consumer.seek(tp, first[tp])
        progress_at, last = time.monotonic(), dict(first)
        while pending:
            batches = consumer.poll(timeout_ms=_POLL_MS)
            for tp, messages in batches.items():
                for message in messages:
                    if message.offset < end[tp]:
                        yield TopicRecord.of(message)
            # Positions, not the last offset seen: compaction, aborted records and
            # transaction markers leave gaps, which the position moves past.
            positions = {tp: consumer.position(tp) for tp in pending}
            pending = {tp for tp in pending if positions[tp] < end[tp]}
            if any(last[tp] != at for tp, at in positions.items()):
                progress_at = time.monotonic()
                last.update(positions)
            elif time.monotonic() - progress_at > _STALLED_S:
                raise StreamlearnError(
                    f"reading {topic!r} at {bootstrap} stalled for {_STALLED_S:g} s "
                    f"before its end offsets {sorted(end.values())}"
                )
