"""One call that gives the rest of streamlearn a Kafka to talk to, and one that also
creates a pipeline's topics there (as its worker needs them)."""

from __future__ import annotations

from streamlearn.broker.local import LocalBroker
from streamlearn.config import Settings
from streamlearn.errors import BrokerError
from streamlearn.kafka.admin import create_topics, wait_ready
from streamlearn.spec.pipeline import Pipeline
from streamlearn.spec.topics import topic_configs

__all__ = ["ensure_broker", "ensure_pipeline_topics"]


def ensure_broker(settings: Settings) -> str:
    """Bootstrap address of a ready Kafka: the external one if configured, else ours.

    With ``STREAMLEARN_BOOTSTRAP`` set nothing is started; the cluster only has to answer
    (through the configured security settings). The local broker's address is the listener
    that matches ``STREAMLEARN_SECURITY_PROTOCOL``.
    """
    if settings.uses_external_broker:
        try:
            wait_ready(settings.bootstrap, settings.broker_timeout, settings, announce=True)
        except BrokerError as e:
            if "STREAMLEARN_" in str(e):
                raise
            raise BrokerError(f"{e} (check STREAMLEARN_BOOTSTRAP)") from None
        return settings.bootstrap
    LocalBroker(settings).start()
    return settings.bootstrap_servers


def ensure_pipeline_topics(spec: Pipeline, settings: Settings) -> str:
    """:func:`ensure_broker`, then the pipeline's topics with the worker's configs (those
    that exist are left as they are); returns the bootstrap address."""
    bootstrap = ensure_broker(settings)
    create_topics(bootstrap, spec.topics, topic_configs(spec, settings), settings=settings)
    return bootstrap
