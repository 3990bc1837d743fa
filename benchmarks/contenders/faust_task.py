"""Explore contender: A's worker, app and processor, with the hot path moved out of faust's
stream into an ``app.task`` that consumes with aiokafka ``getmany`` and sends through
``app.producer``. faust still hosts the process (signals, services, producer, shutdown).

Offsets are committed after the outputs are acked (at-least-once), every 2.8 s as in faust.
Same CLI as ``streamlearn run``: ``run <pipeline file> --name <name>``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer

from benchmarks.contenders.streamlearn_processor import Message
from streamlearn.broker.admin import create_topics
from streamlearn.config import Settings, load_settings
from streamlearn.pipeline import Pipeline, load_pipeline
from streamlearn.streams.app import broker_urls
from streamlearn.streams.processor import EventProcessor, SourceMessage
from streamlearn.streams.worker import build_worker, pipeline_topics

COMMIT_INTERVAL_S = 2.8  # faust's broker_commit_interval


def as_messages(records: list[Any]) -> list[SourceMessage]:
    return [
        Message(r.topic, r.partition, r.offset, r.timestamp / 1000, r.key, r.value, r.headers)
        for r in records
    ]


def consume_task(app: faust.App, spec: Pipeline, settings: Settings, proc: EventProcessor) -> Any:
    async def consume() -> None:
        consumer = AIOKafkaConsumer(
            spec.events_topic,
            bootstrap_servers=settings.bootstrap_servers,
            group_id=f"{app.conf.id}.hot",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        send = app.producer.send
        committed = time.monotonic()
        try:
            while not app.should_stop:
                fetched = await consumer.getmany(timeout_ms=100, max_records=settings.batch_size)
                for records in fetched.values():
                    pending = [
                        await send(o.topic, o.key, o.value, None, None,
                                   list(o.headers) if o.headers else None)
                        for o in proc.process_batch(as_messages(records))
                    ]
                    await asyncio.gather(*pending)
                # At-least-once: positions are committed only once their outputs are acked.
                if time.monotonic() - committed > COMMIT_INTERVAL_S:
                    await consumer.commit()
                    committed = time.monotonic()
        finally:
            await consumer.commit()
            await consumer.stop()

    return consume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.add_argument("pipeline_file")
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    settings = load_settings()
    spec = load_pipeline(args.pipeline_file).renamed(args.name)
    create_topics(settings.bootstrap_servers, pipeline_topics(spec))
    _, processor = build_worker(spec, settings)
    app = faust.App(
        f"streamlearn-{spec.name}", broker=broker_urls(settings.bootstrap_servers),
        store="memory://", datadir=str(settings.state_dir / "workers" / spec.name),
        topic_disable_leader=True, web_enabled=False, autodiscover=False,
    )
    # No faust stream consumes: the app runs only its producer (and the task).
    app.producer_only = True
    app.task(consume_task(app, spec, settings, processor))
    faust.Worker(app, loglevel="info", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
