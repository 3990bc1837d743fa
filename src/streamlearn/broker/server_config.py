"""The files a local broker starts from: ``server.properties`` and its cluster id."""

from __future__ import annotations

import base64
import re
import uuid

from streamlearn.broker.tls import BrokerTls
from streamlearn.config import Settings

__all__ = ["new_cluster_id", "parse_identity", "render_server_properties"]

_VERSION_LINE = re.compile(r"^# kafka_version=(\S+)$", re.MULTILINE)
_ADVERTISED = re.compile(r"^advertised\.listeners=PLAINTEXT://([^,\s]+)", re.MULTILINE)
SASL_LISTENER = "SASL_SSL"


def render_server_properties(settings: Settings, tls: BrokerTls | None = None) -> str:
    """``server.properties`` of a combined broker+controller bound to ``kafka_host`` only.

    >>> text = render_server_properties(Settings(kafka_port=19092, controller_port=19093))
    >>> "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in text
    True
    """
    host, data = settings.kafka_host, settings.broker_dir / "data"
    sasl = f",{SASL_LISTENER}://{host}:{settings.broker_sasl_port}" if tls else ""
    lines = [
        "# written by streamlearn on every start; edits are overwritten",
        f"# kafka_version={settings.kafka_version}",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{host}:{settings.controller_port}",
        f"listeners=PLAINTEXT://{host}:{settings.kafka_port},"
        f"CONTROLLER://{host}:{settings.controller_port}{sasl}",
        f"advertised.listeners=PLAINTEXT://{host}:{settings.kafka_port}{sasl}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        + (f",{SASL_LISTENER}:SASL_SSL" if tls else ""),
        f"log.dirs={data}",
        "num.partitions=1",
        # The defaults (3) block consumer groups and transactions on a single broker.
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        # Measured: a fresh broker's first consumer group waited 1.6-3.6 s for the 50
        # default partitions of __consumer_offsets, 0.5 s for one. One node needs one.
        "offsets.topic.num.partitions=1",
        # streamlearn creates its topics with explicit partition counts; a typo in a
        # topic name must fail, not create a 1-partition topic.
        "auto.create.topics.enable=false",
        *(_sasl_listener(settings, tls) if tls else []),
    ]
    return "\n".join(lines) + "\n"


def _sasl_listener(settings: Settings, tls: BrokerTls) -> list[str]:
    """SCRAM over TLS for clients; the broker and controller talk PLAINTEXT on loopback."""
    mechanism = settings.sasl_mechanism
    prefix = f"listener.name.{SASL_LISTENER.lower()}."
    return [
        f"sasl.enabled.mechanisms={mechanism}",
        f"{prefix}sasl.enabled.mechanisms={mechanism}",
        f"{prefix}{mechanism.lower()}.sasl.jaas.config="
        + ("org.apache.kafka.common.security.plain.PlainLoginModule required;"
           if mechanism == "PLAIN" else
           "org.apache.kafka.common.security.scram.ScramLoginModule required;"),
        f"{prefix}ssl.keystore.type=PKCS12",
        f"{prefix}ssl.keystore.location={tls.keystore}",
        f"{prefix}ssl.keystore.password={tls.password}",
        f"{prefix}ssl.key.password={tls.password}",
        f"{prefix}ssl.truststore.type=PKCS12",
        f"{prefix}ssl.truststore.location={tls.truststore}",
        f"{prefix}ssl.truststore.password={tls.password}",
    ]


def parse_identity(properties: str) -> tuple[str | None, str | None]:
    """(Kafka version, bootstrap) recorded in a ``server.properties`` we rendered.

    >>> parse_identity(render_server_properties(Settings(kafka_version="3.9.1")))
    ('3.9.1', '127.0.0.1:9092')
    """
    version = _VERSION_LINE.search(properties)
    bootstrap = _ADVERTISED.search(properties)
    return (
        version.group(1) if version else None,
        bootstrap.group(1) if bootstrap else None,
    )


def new_cluster_id() -> str:
    """A cluster id as ``StorageTool random-uuid`` prints it, without a JVM start (~2 s).

    >>> len(new_cluster_id())
    22
    """
    while True:
        # Kafka's Uuid is 16 random bytes in unpadded base64url, never starting with "-".
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text
