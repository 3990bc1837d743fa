"""Contenders C2 and E: hand-written loops on aiokafka with batched fetches (``getmany``).

``--mode model`` (C2) predicts and learns; ``--mode forward`` (E) forwards each event as it
is, the latency floor of broker and client.

At-least-once, like every Kafka contender: each fetched batch is sent, every send's ack
awaited (``acks=all``), and only then are the batch's next offsets committed. Auto-commit
is off: it would commit on a timer, whatever had been acked. aiokafka's commit is a
coroutine with no fire-and-forget form, so the loop awaits it, as a user's loop would.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.contenders.work import PredictLearn, kafka_arguments

Transform = Callable[[Sequence[Any]], list[tuple[bytes | None, bytes]]]


def model_transform(workload: str) -> Transform:
    handle = PredictLearn.for_workload(workload).handle
    return lambda records: [handle(r.value) for r in records]


def forward_transform(workload: str) -> Transform:
    return lambda records: [(r.key, r.value) for r in records]


TRANSFORMS: dict[str, Callable[[str], Transform]] = {
    "model": model_transform,
    "forward": forward_transform,
}


def next_offsets(fetched: Mapping[TopicPartition, Sequence[Any]]) -> dict[TopicPartition, int]:
    """What to commit for a processed batch: one past its last record, per partition."""
    return {tp: records[-1].offset + 1 for tp, records in fetched.items()}


async def run(args: Any, transform: Transform) -> None:
    consumer = AIOKafkaConsumer(
        args.input,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await consumer.start()
    await producer.start()
    send, output = producer.send, args.output
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=100, max_records=args.max_records)
            if not fetched:
                continue
            pending = [
                await send(output, value, key=key)
                for records in fetched.values()
                for key, value in transform(records)
            ]
            await asyncio.gather(*pending)  # raises if an output was not acked: no commit
            await consumer.commit(next_offsets(fetched))
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    parser = kafka_arguments(__doc__ or "")
    parser.add_argument("--mode", choices=list(TRANSFORMS), default="model")
    parser.add_argument("--max-records", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(run(args, TRANSFORMS[args.mode](args.workload)))


if __name__ == "__main__":
    main()
