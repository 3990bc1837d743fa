"""Contender C: the consume → predict/learn → produce loop a user writes with kafka-python.

Runs until SIGTERM; the producer is flushed before exit.
"""

from __future__ import annotations

import signal
from types import FrameType

from kafka import KafkaConsumer, KafkaProducer

from benchmarks.contenders.work import PredictLearn, kafka_arguments


class Stop:
    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self.request)
        signal.signal(signal.SIGINT, self.request)

    def request(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def main() -> None:
    args = kafka_arguments(__doc__ or "").parse_args()
    stop = Stop()
    step = PredictLearn.for_workload(args.workload)
    consumer = KafkaConsumer(
        args.input,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        consumer_timeout_ms=200,
    )
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, acks="all")
    try:
        while not stop.requested:
            # The iterator ends after 200 ms without records; then look at the stop flag.
            for message in consumer:
                key, value = step.handle(message.value)
                producer.send(args.output, key=key, value=value)
        producer.flush()
    finally:
        producer.close()
        consumer.close()


if __name__ == "__main__":
    main()
