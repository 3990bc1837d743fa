"""Local Apache Kafka for streamlearn: jars from Maven, a KRaft single node, admin helpers.

``ensure_broker(settings)`` is what the rest of the package calls; the CLI group in
:mod:`streamlearn.cli.broker` drives :class:`LocalBroker` directly.
"""

from __future__ import annotations

from streamlearn.broker.ensure import ensure_broker
from streamlearn.broker.jars import resolve_jars
from streamlearn.broker.local import BrokerStatus, LocalBroker
from streamlearn.kafka.admin import create_topics, delete_topics, topic_partitions, wait_ready

__all__ = [
    "BrokerStatus",
    "LocalBroker",
    "create_topics",
    "delete_topics",
    "ensure_broker",
    "resolve_jars",
    "topic_partitions",
    "wait_ready",
]
