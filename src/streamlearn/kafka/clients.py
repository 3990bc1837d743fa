"""The configuration of every confluent-kafka client (the worker's, its stores', the
registry's and the warm start's): one place, security settings included."""

from __future__ import annotations

import logging
from typing import Any

from streamlearn.config import Settings
from streamlearn.kafka.security import librdkafka_config

__all__ = ["LIBRDKAFKA_LOGGER", "kafka_config"]

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
