"""Reading a topic without a consumer group: follow it (``streamlearn tail``) or read it once.

No group means nothing here ever moves a worker's committed offsets. Both readers assign
every partition themselves and seek to offsets they fetched first, so what they report
("N records already there") and where they start agree exactly.

>>> record = TailRecord(0, 7, b"k", b'{"a": 1}', [("streamlearn.error.reason", b"bad_type")])
>>> print(record.render())
[0@7] {"a": 1}
    streamlearn.error.reason: bad_type
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.kafka.security import kafka_python_config, resolve

__all__ = ["TailRecord", "TopicNotFound", "read_to_end", "tail"]

HEADER_INDENT = "    "
_POLL_MS = 500
_STALLED_S = 30.0


class TopicNotFound(StreamlearnError):
    """The topic to read does not exist on the cluster."""


@dataclass(frozen=True)
class TailRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

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


def _record(message: Any) -> TailRecord:
    return TailRecord(
        message.partition, message.offset, message.key, message.value,
        list(message.headers or []),
    )


def _assign(
    consumer: KafkaConsumer, bootstrap: str, topic: str
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Assign every partition of ``topic``; return its first and end offsets."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise TopicNotFound(f"no topic {topic!r} at {bootstrap}")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    return consumer.beginning_offsets(tps), consumer.end_offsets(tps)


def _consumer(bootstrap: str, settings: Settings | None, idle_timeout: float | None = None
              ) -> KafkaConsumer:
    """A consumer with no group that reads ``read_committed`` (kafka-python's default is
    ``read_uncommitted``): records of aborted or open transactions are never shown."""
    return KafkaConsumer(
        **kafka_python_config(resolve(settings)),
        bootstrap_servers=bootstrap.split(","),
        group_id=None,  # no group: never moves anyone's committed offsets
        client_id=f"streamlearn-tail-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        isolation_level="read_committed",
        consumer_timeout_ms=int(idle_timeout * 1000) if idle_timeout else float("inf"),
    )


def tail(
    bootstrap: str,
    topic: str,
    from_beginning: bool = False,
    limit: int | None = None,
    idle_timeout: float | None = None,
    on_start: Callable[[int], None] | None = None,
    settings: Settings | None = None,
) -> Iterator[TailRecord]:
    """Records of ``topic`` as they arrive (committed ones: ``read_committed``); stops after
    ``limit`` or ``idle_timeout`` s idle.

    ``on_start(n)`` is called once, when reading starts, with the number of records the
    topic already holds (shown only ``from_beginning``).
    Raises :class:`TopicNotFound` if the topic does not exist. ``settings`` gives the
    security settings (default: this process's).
    """
    consumer = _consumer(bootstrap, settings, idle_timeout)
    try:
        first, end = _assign(consumer, bootstrap, topic)
        for tp in first:
            consumer.seek(tp, first[tp] if from_beginning else end[tp])
        if on_start is not None:
            on_start(sum(end[tp] - first[tp] for tp in first))
        for count, message in enumerate(consumer, start=1):
            yield _record(message)
            if limit is not None and count >= limit:
                return
    finally:
        consumer.close()


def read_to_end(bootstrap: str, topic: str, settings: Settings | None = None
                ) -> Iterator[TailRecord]:
    """Every record ``topic`` holds now, oldest first per partition, then stop.

    Reads ``read_committed``, as the pipeline's own consumers do (librdkafka's default):
    records of aborted or still open transactions are not returned. Stops once its position
    on every partition has reached the end offset (the last stable offset) fetched when
    reading starts, so records that arrive later are not read, and a partition that ends
    in transaction markers (never delivered) does not stall it. Raises
    :class:`TopicNotFound`, or :class:`StreamlearnError` if it makes no progress for 30 s.
    """
    consumer = _consumer(bootstrap, settings)
    try:
        first, end = _assign(consumer, bootstrap, topic)
        pending = {tp for tp in first if end[tp] > first[tp]}
        for tp in first:
            consumer.seek(tp, first[tp])
        progress_at, last = time.monotonic(), dict(first)
        while pending:
            batches = consumer.poll(timeout_ms=_POLL_MS)
            for tp, messages in batches.items():
                for message in messages:
                    if message.offset < end[tp]:
                        yield _record(message)
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
    finally:
        consumer.close()
