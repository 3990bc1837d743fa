"""One call that gives the rest of streamlearn a Kafka to talk to."""

from __future__ import annotations

from streamlearn.broker.local import LocalBroker
from streamlearn.config import Settings
from streamlearn.errors import BrokerError
from streamlearn.kafka.admin import wait_ready

__all__ = ["ensure_broker"]


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
