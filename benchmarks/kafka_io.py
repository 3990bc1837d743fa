"""The harness's own Kafka calls: topics, pre-producing, paced producing, reading back."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import orjson
from confluent_kafka import Producer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from benchmarks.workloads import EVENT_ID_FIELD, Event
from streamlearn.kafka.admin import create_topics

__all__ = [
    "OffsetProbe",
    "create_topic",
    "produce_all",
    "produce_paced",
    "read_back",
    "topics_with_prefix",
]

# Output topics stamp records on arrival at the broker, so a prediction's timestamp means
# the same thing whichever client produced it.
LOG_APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}


def create_topic(bootstrap: str, name: str, log_append_time: bool = False) -> None:
    configs = {name: LOG_APPEND_TIME} if log_append_time else None
    create_topics(bootstrap, {name: 1}, configs)


def topics_with_prefix(bootstrap: str, prefix: str) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return [name for name in admin.list_topics() if name.startswith(prefix)]
    finally:
        admin.close()


def produce_all(bootstrap: str, topic: str, events: Sequence[Event]) -> None:
    """Send every event as fast as the producer allows, and wait until all are acked."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value in events:
            producer.send(topic, key=key, value=value)
        producer.flush()
    finally:
        producer.close()


@contextmanager
def _paced_producer(bootstrap: str, topic: str) -> Iterator[Producer]:
    # librdkafka: kafka-python's sender thread alone put p99 at ~40 ms at 1,500 events/s.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
    producer.list_topics(topic, timeout=30)
    try:
        yield producer
    finally:
        if producer.flush(30):
            raise RuntimeError(f"paced producer could not deliver everything to {topic}")


PACE_TICK_S = 0.001
"""The paced producer sleeps only when this far ahead: it sends what falls due within 1 ms
together. A sleep per event (100 µs apart at 10k events/s) cost the feeder half a core and
the broker three quarters of one in single-message requests, on a 2-CPU machine: the
latency phase then measured the feeder. Each event is still stamped when it is sent."""


def produce_paced(
    bootstrap: str, topic: str, events: Sequence[Event], rate: float
) -> dict[bytes, int]:
    """Send at ``rate`` events/s with CreateTime = send time; returns it (ms) per event id."""
    sent: dict[bytes, int] = {}
    with _paced_producer(bootstrap, topic) as producer:
        start = time.perf_counter()
        for n, (key, value) in enumerate(events):
            delay = start + n / rate - time.perf_counter()
            if delay > PACE_TICK_S:
                time.sleep(delay)
            now = int(time.time() * 1000)
            producer.produce(topic, value=value, key=key, timestamp=now)
            producer.poll(0)
            sent[key] = now
    return sent


class OffsetProbe:
    """Cheap end-offset look-ups, so the harness stays quiet while a contender runs."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                       isolation_level="read_committed")

    def end(self, topic: str) -> int:
        tp = TopicPartition(topic, 0)
        return int(self._consumer.end_offsets([tp])[tp])

    def close(self) -> None:
        self._consumer.close()


def read_back(bootstrap: str, topic: str, timeout: float = 60.0) -> list[tuple[bytes, int]]:
    """(event id, record timestamp in ms) of every record of ``topic``, in offset order."""
    tp = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             isolation_level="read_committed")
    records: list[tuple[bytes, int]] = []
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        deadline = time.monotonic() + timeout
        while consumer.position(tp) < end and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=5000).values():
                records.extend(
                    (orjson.loads(r.value)[EVENT_ID_FIELD].encode(), r.timestamp) for r in batch
                )
    finally:
        consumer.close()
    return records
