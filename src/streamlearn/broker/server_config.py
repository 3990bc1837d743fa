"""The files a local broker starts from: ``server.properties`` and its cluster id."""

from __future__ import annotations

import base64
import re
import uuid

from streamlearn.broker.tls import BrokerTls
from streamlearn.config import Settings

__all__ = [
    "PROTOCOLS",
    "new_cluster_id",
    "parse_identity",
    "render_server_properties",
    "tls_listeners",
]

_VERSION_LINE = re.compile(r"^# kafka_version=(\S+)$", re.MULTILINE)
_ADVERTISED = re.compile(r"^advertised\.listeners=PLAINTEXT://([^,\s]+)", re.MULTILINE)
SASL_LISTENER = "SASL_SSL"
SSL_LISTENER = "MTLS"
"""The SSL listener's name: mutual TLS (not ``SSL``, a suffix of the other one's name)."""
PROTOCOLS = {SASL_LISTENER: "SASL_SSL", SSL_LISTENER: "SSL"}
"""Security protocol of each TLS listener."""


def tls_listeners(settings: Settings) -> dict[str, str]:
    """Name -> ``host:port`` of the local broker's TLS listeners the settings ask for.

    >>> tls_listeners(Settings(broker_ssl_port=9095))
    {'MTLS': '127.0.0.1:9095'}
    """
    ports = {SASL_LISTENER: settings.broker_sasl_port, SSL_LISTENER: settings.broker_ssl_port}
    return {name: f"{settings.kafka_host}:{port}" for name, port in ports.items() if port}


def render_server_properties(settings: Settings, tls: BrokerTls | None = None) -> str:
    """``server.properties`` of a combined broker+controller bound to ``kafka_host`` only.

    With ``tls`` (the stores :func:`~streamlearn.broker.tls.ensure_certificates` made), the
    SASL_SSL and SSL listeners the settings ask for are added beside the PLAINTEXT one.

    >>> text = render_server_properties(Settings(kafka_port=19092, controller_port=19093))
    >>> "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in text
    True
    """
    host, data = settings.kafka_host, settings.broker_dir / "data"
    extra = tls_listeners(settings) if tls else {}
    added = "".join(f",{name}://{address}" for name, address in extra.items())
    lines = [
        "# written by streamlearn on every start; edits are overwritten",
        f"# kafka_version={settings.kafka_version}",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{host}:{settings.controller_port}",
        f"listeners=PLAINTEXT://{host}:{settings.kafka_port},"
        f"CONTROLLER://{host}:{settings.controller_port}{added}",
        f"advertised.listeners=PLAINTEXT://{host}:{settings.kafka_port}{added}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        + "".join(f",{name}:{PROTOCOLS[name]}" for name in extra),
        f"log.dirs={data}",
        "num.partitions=1",
        # The defaults (3) block consumer groups and transactions on a single broker.
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        # Exactly-once: a worker killed with a transaction open holds back read_committed
        # readers until the broker aborts it; the broker looks for expired transactions
        # every 10 s by default, on top of their timeout (10 s). One node, loopback: 1 s.
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000",
        "transaction.state.log.num.partitions=1",
        "group.initial.rebalance.delay.ms=0",
        # Measured: a fresh broker's first consumer group waited 1.6-3.6 s for the 50
        # default partitions of __consumer_offsets, 0.5 s for one. One node needs one.
        "offsets.topic.num.partitions=1",
        # streamlearn creates its topics with explicit partition counts; a typo in a
        # topic name must fail, not create a 1-partition topic.
        "auto.create.topics.enable=false",
        # After a kill -9 the restarted node cannot register until the controller expires
        # its old incarnation's session (default 9 s of a measured 14.6 s restart). The
        # node heartbeats its own controller each second on loopback: 6 s survives a 5 s stall
        # of a loaded machine (9 s and 2 s heartbeats: 7 s).
        "broker.session.timeout.ms=6000",
        "broker.heartbeat.interval.ms=1000",
    ]
    if tls and SASL_LISTENER in extra:
        lines += _sasl_listener(settings, tls)
    if tls and SSL_LISTENER in extra:
        lines += _ssl_listener(tls)
    return "\n".join(lines) + "\n"


def _stores(listener: str, tls: BrokerTls) -> list[str]:
    prefix = f"listener.name.{listener.lower()}."
    return [
        f"{prefix}ssl.keystore.type=PKCS12",
        f"{prefix}ssl.keystore.location={tls.keystore}",
        f"{prefix}ssl.keystore.password={tls.password}",
        f"{prefix}ssl.key.password={tls.password}",
        f"{prefix}ssl.truststore.type=PKCS12",
        f"{prefix}ssl.truststore.location={tls.truststore}",
        f"{prefix}ssl.truststore.password={tls.password}",
    ]


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
        *_stores(SASL_LISTENER, tls),
    ]


def _ssl_listener(tls: BrokerTls) -> list[str]:
    """TLS that lets in only clients whose certificate the local CA signed."""
    return [
        f"listener.name.{SSL_LISTENER.lower()}.ssl.client.auth=required",
        *_stores(SSL_LISTENER, tls),
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
