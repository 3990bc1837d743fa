"""The configuration of every confluent-kafka client (the worker's, its stores', the
registry's and the warm start's): one place, security settings included."""

from __future__ import annotations

import logging
from typing import Any

from streamlearn.config import Settings
from streamlearn.kafka.security import librdkafka_config

__all__ = ["LIBRDKAFKA_LOGGER", "group_consumer_config", "kafka_config", "output_producer_config"]

LIBRDKAFKA_LOGGER = "streamlearn.librdkafka"


def kafka_config(settings: Settings, client_id: str) -> dict[str, Any]:
    """What every librdkafka client of the worker shares (its log goes to Python logging),
    security settings included."""
    return {
        **librdkafka_config(settings),
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": client_id,
        "logger": logging.getLogger(LIBRDKAFKA_LOGGER),
        # librdkafka backs off up to 10 s between attempts, so a worker could notice the
        # broker back 10 s late (Java clients: 1 s). 2 s is still only a few attempts per
        # connection a minute while it is down.
        "reconnect.backoff.max.ms": 2000,
    }


def group_consumer_config(base: dict[str, Any], group: str, session_timeout: float
                          ) -> dict[str, Any]:
    """A consumer in ``group`` that commits only what the worker says it may (offsets are
    stored and committed explicitly, after the outputs they cover)."""
    session_ms = int(session_timeout * 1000)
    return {
        **base,
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": max(500, min(3000, session_ms // 3)),
    }


def output_producer_config(base: dict[str, Any]) -> dict[str, Any]:
    """The producer of the worker's outputs: idempotent, every replica acknowledges, a
    millisecond of batching, delivery reports for failures only."""
    return {
        **base,
        # Keys land where Java and kafka-python clients put them (murmur2).
        "partitioner": "murmur2_random",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 1,
        "delivery.report.only.error": True,
    }
