"""Every kafka-python client (the admin calls' and the interactive tools'), made here.

Bootstrap servers, security settings (:func:`~streamlearn.kafka.security.kafka_python_config`)
and a client id are set once, with what each kind shares: a producer is acknowledged by
every in-sync replica; a consumer has no group and reads committed records only, as every
reader in the project does (kafka-python's default is ``read_uncommitted``). ``overrides``
are kafka-python keyword arguments, set last. ``settings`` gives the security settings
(default: this process's).

kafka-python's default partitioner is murmur2, as Java clients use, so a key lands on the
partition it would reach from any other producer. confluent-kafka clients are configured by
:mod:`streamlearn.kafka.clients` instead.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from streamlearn.config import Settings
from streamlearn.kafka.security import kafka_python_config, resolve

__all__ = ["admin", "consumer", "producer"]


def _common(bootstrap: str, settings: Settings | None, client_id: str) -> dict[str, Any]:
    return {
        **kafka_python_config(resolve(settings)),
        "bootstrap_servers": bootstrap.split(","),
        "client_id": client_id,
    }


def producer(bootstrap: str, settings: Settings | None = None, *,
             client_id: str = "streamlearn-producer", **overrides: Any) -> KafkaProducer:
    """A producer whose sends are acknowledged by every in-sync replica (``acks=all``),
    batched for 5 ms."""
    return KafkaProducer(**{**_common(bootstrap, settings, client_id),
                            "acks": "all", "linger_ms": 5, **overrides})


def consumer(bootstrap: str, settings: Settings | None = None, *,
             client_id: str = "streamlearn-reader", **overrides: Any) -> KafkaConsumer:
    """A consumer with no group (it never moves anyone's committed offsets) that reads
    ``read_committed``: records of aborted or open transactions are never returned."""
    return KafkaConsumer(**{**_common(bootstrap, settings, client_id),
                            "group_id": None, "enable_auto_commit": False,
                            "isolation_level": "read_committed", **overrides})


def admin(bootstrap: str, settings: Settings | None = None, *,
          client_id: str = "streamlearn-admin", **overrides: Any) -> KafkaAdminClient:
    """An admin client (:mod:`streamlearn.kafka.admin` holds the calls made with it)."""
    return KafkaAdminClient(**{**_common(bootstrap, settings, client_id), **overrides})
