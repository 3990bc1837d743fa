"""Contenders C3 and E3: hand-written loops on confluent-kafka (librdkafka).

``--mode model`` (C3) decodes, predicts, encodes and learns per event (the same work as C
and C2); ``--mode forward`` (E3) forwards each event as it is, the latency floor of a
confluent-kafka worker (the client streamlearn's hot path uses).

Batches are sized by what has arrived, never by waiting to fill one: block up to
``FIRST_WAIT_S`` for a first message, then drain what librdkafka has already fetched without
waiting (``consume(n, timeout=0)``). A fixed ``consume(500, timeout=0.05)`` would hold every
event at low rates until the timeout (p50 27-44 ms at 1.7k events/s, measured here).

At-least-once, like every Kafka contender: produce the batch's outputs, ``flush()`` until the
broker acked all of them (``acks=all``; failures come back through the delivery callback),
then commit the batch's next offsets. The commit is asynchronous: it is issued after the
acks, which is all at-least-once needs, and the loop does not wait for the broker's answer.
Runs until SIGTERM; the last batch's offsets are committed synchronously before exit.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from benchmarks.contenders.work import PredictLearn, Stop, kafka_arguments

FIRST_WAIT_S = 0.1
"""Longest block for a batch's first message; also how often the stop flag is looked at."""
FLUSH_TIMEOUT_S = 30.0

Transform = Callable[[Sequence[Message]], list[tuple[bytes | None, bytes | None]]]


def model_transform(workload: str) -> Transform:
    handle = PredictLearn.for_workload(workload).handle
    return lambda batch: [handle(m.value()) for m in batch]


def forward_transform(workload: str) -> Transform:
    return lambda batch: [(m.key(), m.value()) for m in batch]


TRANSFORMS: dict[str, Callable[[str], Transform]] = {
    "model": model_transform,
    "forward": forward_transform,
}


class DeliveryErrors:
    """The producer's delivery callback; with ``delivery.report.only.error`` it runs only
    for failed outputs, so the acked ones cost no Python call."""

    def __init__(self) -> None:
        self.first: KafkaError | None = None

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None and self.first is None:
            self.first = err


def take(consumer: Consumer, max_records: int) -> list[Message]:
    """What has arrived: wait for one message, then drain the fetched ones without waiting."""
    batch = consumer.consume(1, timeout=FIRST_WAIT_S)
    if not batch:
        return []
    if max_records > 1:
        batch += consumer.consume(max_records - 1, timeout=0)
    good = []
    for m in batch:
        err = m.error()
        if err is None:
            good.append(m)
        elif err.fatal():
            raise KafkaException(err)
        else:  # an event from the client (no record): nothing to answer, nothing skipped
            print(f"consumer: {err}", file=sys.stderr)
    return good


def next_offsets(batch: Sequence[Message]) -> list[TopicPartition]:
    """What to commit for a processed batch: one past its last record, per partition."""
    last: dict[tuple[str, int], int] = {}
    for m in batch:
        last[(m.topic(), m.partition())] = m.offset()
    return [TopicPartition(topic, partition, offset + 1)
            for (topic, partition), offset in last.items()]


def run(args: Any, transform: Transform) -> None:
    stop = Stop()
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    errors = DeliveryErrors()
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        # Kafka's default partitioner, so keys land where Java and kafka-python put them.
        "partitioner": "murmur2_random",
        "on_delivery": errors,
        "delivery.report.only.error": True,
    })
    consumer.subscribe([args.input])
    produce, output = producer.produce, args.output
    committed: list[TopicPartition] = []
    try:
        while not stop.requested:
            batch = take(consumer, args.max_records)
            if not batch:
                continue
            for key, value in transform(batch):
                produce(output, value, key)
            if producer.flush(FLUSH_TIMEOUT_S):
                raise RuntimeError(f"outputs not acked after {FLUSH_TIMEOUT_S:g} s")
            if errors.first is not None:
                raise KafkaException(errors.first)  # an output failed: the offsets stay put
            committed = next_offsets(batch)
            consumer.commit(offsets=committed, asynchronous=True)
        if committed:
            consumer.commit(offsets=committed, asynchronous=False)
    finally:
        consumer.close()


def main() -> None:
    parser = kafka_arguments(__doc__ or "")
    parser.add_argument("--mode", choices=list(TRANSFORMS), default="model")
    parser.add_argument("--max-records", type=int, default=1000)
    args = parser.parse_args()
    run(args, TRANSFORMS[args.mode](args.workload))


if __name__ == "__main__":
    main()
