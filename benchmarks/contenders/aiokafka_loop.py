"""Contenders C2 and E: hand-written loops on aiokafka with batched fetches (``getmany``).

``--mode model`` (C2) predicts and learns; ``--mode forward`` (E) forwards each event as it
is, the latency floor of broker and client; ``--mode streamlearn`` drives streamlearn's own
``EventProcessor`` (model, metrics, encoding) without faust, to price faust's share of A.
Each fetched batch is sent, then its delivery awaited, as streamlearn's agent does.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

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


async def run(args: Any, transform: Transform) -> None:
    consumer = AIOKafkaConsumer(
        args.input,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
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
            for records in fetched.values():
                pending = [await send(output, value, key=key) for key, value in transform(records)]
                await asyncio.gather(*pending)
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    parser = kafka_arguments(__doc__ or "")
    parser.add_argument("--mode", choices=[*TRANSFORMS, "streamlearn"], default="model")
    parser.add_argument("--max-records", type=int, default=1000)
    args = parser.parse_args()
    if args.mode == "streamlearn":
        from benchmarks.contenders.streamlearn_processor import processor_transform

        transform = processor_transform(args.workload, args.output)
    else:
        transform = TRANSFORMS[args.mode](args.workload)
    asyncio.run(run(args, transform))


if __name__ == "__main__":
    main()
