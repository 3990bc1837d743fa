"""The faust app of one pipeline: consume events, predict, produce, learn.

The agent stays thin: it takes events in batches (``take_events`` acks them only after the
body has run), hands their messages to :class:`EventProcessor`, sends the outputs, and waits
for the broker to confirm them before the batch is acked. A crash before that point means the
batch is consumed again (at-least-once); consumers dedup predictions by ``event_id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import faust

from streamlearn.config import Settings
from streamlearn.pipeline import Pipeline
from streamlearn.streams.processor import EventProcessor

__all__ = ["broker_urls", "create_app"]


def broker_urls(bootstrap: str) -> list[str]:
    """faust's URL form of a ``host:port[,host:port]`` bootstrap string.

    >>> broker_urls("127.0.0.1:9092,kafka:9092")
    ['kafka://127.0.0.1:9092', 'kafka://kafka:9092']
    """
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


def create_app(spec: Pipeline, settings: Settings, processor: EventProcessor) -> faust.App:
    datadir = settings.state_dir / "workers" / spec.name
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"streamlearn-{spec.name}",
        broker=broker_urls(settings.bootstrap_servers),
        store="memory://",
        datadir=str(datadir),
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        topic_partitions=spec.partitions,
        # The project creates its topics (right partition counts); the leader topic is unused.
        topic_disable_leader=True,
        web_enabled=False,
        autodiscover=False,
    )
    events = app.topic(
        spec.events_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
    )

    async def predict(stream: faust.StreamT[Any]) -> None:
        send = app.producer.send
        take_events = stream.take_events  # type: ignore[attr-defined]  # not in StreamT
        async for batch in take_events(settings.batch_size, within=settings.batch_within):
            outputs = processor.process_batch([event.message for event in batch])
            pending = [
                await send(out.topic, out.key, out.value, None, None, _headers(out.headers))
                for out in outputs
            ]
            await asyncio.gather(*pending)

    app.agent(events, name=f"{spec.name}.predict")(predict)
    return app


def _headers(headers: Sequence[tuple[str, bytes]] | None) -> list[tuple[str, bytes]] | None:
    return None if headers is None else list(headers)
