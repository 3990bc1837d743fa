"""Contender C: the consume → predict/learn → produce loop a user writes with kafka-python.

At-least-once, like every Kafka contender: each polled batch is produced, flushed until the
broker acked every output (``acks=all``), and only then are the batch's next offsets
committed. Auto-commit is off: it would commit on a timer, whatever had been acked.
Runs until SIGTERM; the last batch is finished and its offsets committed before exit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from benchmarks.contenders.work import PredictLearn, Stop, kafka_arguments


def next_offsets(
    fetched: Mapping[TopicPartition, Sequence[Any]],
) -> dict[TopicPartition, OffsetAndMetadata]:
    """What to commit for a processed batch: one past its last record, per partition."""
    return {tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)
            for tp, records in fetched.items()}


def main() -> None:
    parser = kafka_arguments(__doc__ or "")
    parser.add_argument("--max-records", type=int, default=500, help="kafka-python's default.")
    args = parser.parse_args()
    stop = Stop()
    handle = PredictLearn.for_workload(args.workload).handle
    consumer = KafkaConsumer(
        args.input,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, acks="all")
    send, output = producer.send, args.output
    committed: dict[TopicPartition, OffsetAndMetadata] = {}
    try:
        while not stop.requested:
            fetched = consumer.poll(timeout_ms=200, max_records=args.max_records)
            if not fetched:
                continue
            sent = [send(output, value=value, key=key)
                    for records in fetched.values()
                    for key, value in (handle(r.value) for r in records)]
            producer.flush()
            failed = next((f.exception for f in sent if f.failed()), None)
            if failed is not None:
                raise RuntimeError(f"an output was not acked; offsets stay put: {failed}")
            committed = next_offsets(fetched)
            # Issued after the acks, so at-least-once holds; not waiting for the answer
            # keeps the loop working (kafka-python offers this, so a user would use it).
            consumer.commit_async(committed)
        if committed:
            consumer.commit(committed)  # wait for the last batch's answer before leaving
    finally:
        producer.close()
        consumer.close(autocommit=False)


if __name__ == "__main__":
    main()
