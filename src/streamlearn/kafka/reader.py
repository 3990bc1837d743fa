"""Reading a topic with no consumer group: to its end (one loop, :func:`consume_to_end`,
for the worker's stores and the tools alike), or from an offset on (``tail``).

No group means nothing here ever moves a worker's committed offsets. Records are read
``read_committed``: records of aborted or still open transactions are never returned. To
its end: confluent-kafka (librdkafka is the faster client on the big topics a restore
reads; docs/performance.md compares the libraries), up to the end offsets fetched when
reading starts; the read is done once the consumer's *position* on each partition reaches
its end, so transaction markers and aborted records, which are skipped rather than
delivered, never stall it. From an offset on: kafka-python, as the interactive tools use
(:func:`open_topic`, which reports what the topic held when opened).

>>> record = TopicRecord(0, 7, b"k", b'{"a": 1}', [("streamlearn.error.reason", b"bad_type")])
>>> print(record.render())
[0@7] {"a": 1}
    streamlearn.error.reason: bad_type
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import kafka
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from kafka import KafkaConsumer

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.kafka import python_clients
from streamlearn.kafka.clients import kafka_config
from streamlearn.kafka.security import resolve

__all__ = ["OpenTopic", "TopicNotFound", "TopicRecord", "consume_to_end", "end_offsets",
           "open_topic", "read_to_end", "records", "watermark_offsets"]

HEADER_INDENT = "    "
READ_TIMEOUT_S = 30.0
NO_LEADER_YET = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                 KafkaError.UNKNOWN_TOPIC_OR_PART)


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
    first: dict[kafka.TopicPartition, int]
    end: dict[kafka.TopicPartition, int]

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
        tps = [kafka.TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        yield OpenTopic(consumer, consumer.beginning_offsets(tps), consumer.end_offsets(tps))
    finally:
        consumer.close()


def read_to_end(bootstrap: str, topic: str, settings: Settings | None = None
                ) -> Iterator[TopicRecord]:
    """Every record ``topic`` holds now, oldest first per partition, then stop.

    Records that arrive after reading starts are not read (a record of a transaction still
    open then is, once it commits). Raises :class:`TopicNotFound`, or
    :class:`StreamlearnError` if it makes no progress for 30 s.
    """
    config = {**kafka_config(resolve(settings), "streamlearn-reader"),
              "bootstrap.servers": bootstrap}
    try:
        for message in _messages(config, topic, None, missing_ok=False):
            yield TopicRecord(message.partition(), message.offset(), message.key(),
                              message.value(), list(message.headers() or []))
    except TimeoutError as exc:
        raise StreamlearnError(f"reading {topic!r} at {bootstrap}: {exc}") from None


def records(consumer_config: dict[str, Any], topic: str, partitions: Iterable[int] | None = None
            ) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record of ``topic`` (or of its ``partitions``), in order, up to
    the end offsets seen at the start (the worker's stores; a missing topic reads as empty).
    TimeoutError after ``READ_TIMEOUT_S`` without progress."""
    for message in _messages(consumer_config, topic, partitions, missing_ok=True):
        yield message.key(), message.value()


def _messages(consumer_config: dict[str, Any], topic: str, partitions: Iterable[int] | None,
              missing_ok: bool) -> Iterator[Message]:
    consumer = Consumer({**consumer_config, "enable.auto.commit": False,
                         "group.id": "streamlearn-reader"})
    try:
        meta = consumer.list_topics(topic, timeout=READ_TIMEOUT_S).topics.get(topic)
        if meta is None or not meta.partitions or (
                meta.error is not None and meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
            if missing_ok:
                return
            raise TopicNotFound(f"no topic {topic!r} at {consumer_config['bootstrap.servers']}")
        wanted = sorted(meta.partitions) if partitions is None else partitions
        ends = {}
        for p in wanted:
            low, high = watermark_offsets(consumer, TopicPartition(topic, p))
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        yield from consume_to_end(consumer, topic, ends)
    finally:
        consumer.close()


def consume_to_end(consumer: Consumer, topic: str, ends: dict[int, int],
                   stalled_s: float = READ_TIMEOUT_S) -> Iterator[Message]:
    """The messages below ``ends`` (partition -> end offset, taken before reading) of the
    partitions of ``topic`` that ``consumer`` is assigned; done once its position on each
    has reached its end. TimeoutError after ``stalled_s`` without progress.

    Positions, not the offset of the last message seen: a partition's last offsets can be
    transaction markers or aborted records, which are never delivered, only skipped.
    """
    pending = dict(ends)
    last: dict[int, int] = {}
    deadline = time.monotonic() + stalled_s
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {topic} made no progress for {stalled_s:g} s")
        # A short wait: consume() returns early only with 500 messages, and the position
        # check below is what ends the read (a restore reads several partitions in turn).
        for msg in consumer.consume(500, timeout=0.05):
            if not msg.error() and msg.offset() < ends.get(msg.partition(), 0):
                yield msg
        positions = {tp.partition: tp.offset for tp in
                     consumer.position([TopicPartition(topic, p) for p in pending])}
        if positions != last:
            deadline = time.monotonic() + stalled_s
        last = positions
        for p, position in positions.items():
            if position >= pending[p]:
                del pending[p]


def end_offsets(config: dict[str, Any], topic: str, partitions: int) -> dict[int, int]:
    """The end offset of each of ``topic``'s first ``partitions`` partitions."""
    consumer = Consumer({**config, "group.id": "streamlearn-offsets"})
    try:
        return {p: watermark_offsets(consumer, TopicPartition(topic, p))[1]
                for p in range(partitions)}
    finally:
        consumer.close()


def watermark_offsets(consumer: Consumer, tp: TopicPartition,
                      timeout: float = READ_TIMEOUT_S) -> tuple[int, int]:
    """(low, high) of a partition; a topic created a moment ago may have no leader yet
    (NOT_LEADER_FOR_PARTITION and other retriable errors are retried for ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0]
            # librdkafka does not flag these retriable here, but they pass once the new
            # topic's partitions have leaders.
            if not (error.retriable() or error.code() in NO_LEADER_YET) or (
                    time.monotonic() > deadline):
                raise
            time.sleep(0.5)
