"""Contenders C2 and E: hand-written loops on aiokafka with batched fetches (``getmany``).

``--mode model`` (C2) predicts and learns; ``--mode forward`` (E) forwards each event as it
is, the latency floor of broker and client.

At-least-once, like every Kafka contender: each fetched batch is sent, every send's ack
awaited (``acks=all``), and only then are the batch's next offsets handed to the committer.
Auto-commit is off: it would commit on a timer, whatever had been acked.
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


class BackgroundCommits:
    """Commits the newest acked offsets from a task of its own, one commit at a time.

    aiokafka's commit is a coroutine with no fire-and-forget form, and Kafka 4's group
    coordinator holds each commit ``group.coordinator.append.linger.ms`` (5 ms) before
    writing it: awaiting it after every batch put E's p50 at 11-13 ms at 1.5k events/s
    (measured here). The other clients' loops do not wait for their commits either
    (kafka-python ``commit_async``, librdkafka ``asynchronous=True``).
    """

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self._latest: dict[TopicPartition, int] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run())

    def offer(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Offsets whose outputs are all acked; committed soon, never before."""
        if self._task.done():
            self._task.result()  # a failed commit stops the loop
        self._latest.update(offsets)
        self._wake.set()

    async def _run(self) -> None:
        committed: dict[TopicPartition, int] = {}
        while True:
            await self._wake.wait()
            self._wake.clear()
            offsets = dict(self._latest)
            if offsets != committed:
                await self._consumer.commit(offsets)
                committed = offsets
            if self._closing and not self._wake.is_set():
                return

    async def close(self) -> None:
        """Commit what was offered last, and wait for it."""
        self._closing = True
        self._wake.set()
        await self._task


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
    commits = BackgroundCommits(consumer)
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
            commits.offer(next_offsets(fetched))
        await commits.close()
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
