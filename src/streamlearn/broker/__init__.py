"""Local Apache Kafka for streamlearn: jars from Maven, a KRaft single node, admin helpers.

``ensure_broker(settings)`` (and ``ensure_pipeline_topics(spec, settings)``, which also
creates a pipeline's topics) is what the rest of the package calls; the CLI group in
:mod:`streamlearn.cli.broker` drives :class:`LocalBroker` directly.
"""

from __future__ import annotations

from streamlearn.broker.ensure import ensure_broker, ensure_pipeline_topics
from streamlearn.broker.jars import resolve_jars
from streamlearn.broker.local import BrokerStatus, LocalBroker
from streamlearn.kafka.admin import create_topics, delete_topics, topic_partitions, wait_ready

__all__ = [
    "BrokerStatus",
    "LocalBroker",
    "create_topics",
    "delete_topics",
    "ensure_broker",
    "ensure_pipeline_topics",
    "resolve_jars",
    "topic_partitions",
    "wait_ready",
]
