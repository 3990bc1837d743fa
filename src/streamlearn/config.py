"""Settings from ``STREAMLEARN_*`` environment variables, in one frozen object.

Nothing else in the package reads the environment or hard-codes an address, port or path.

>>> s = Settings.from_env({"STREAMLEARN_KAFKA_PORT": "19092"})
>>> s.bootstrap_servers
'127.0.0.1:19092'
>>> Settings.from_env({"STREAMLEARN_BOOTSTRAP": "kafka:9092"}).uses_external_broker
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from streamlearn.errors import ConfigError

__all__ = ["DEFAULT_KAFKA_VERSION", "Secret", "Settings", "load_settings"]

DEFAULT_KAFKA_VERSION = "4.1.1"
PREFIX = "STREAMLEARN_"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
GUARANTEES = ("at_least_once", "exactly_once")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


def _home(*parts: str) -> Path:
    return Path.home().joinpath(*parts)


class Secret(str):
    """A string that never prints: ``repr``/``str`` show ``'***'``; ``.reveal()`` gives it.

    >>> key = Secret("hunter2")
    >>> key, f"{key}", key.reveal()
    ('***', '***', 'hunter2')
    """

    def reveal(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"


@dataclass(frozen=True)
class Settings:
    """All settings; each field ``name`` is read from ``STREAMLEARN_<NAME>``."""

    bootstrap: str = ""
    """An existing Kafka (host:port[,host:port]); when set, no local broker is started."""
    kafka_version: str = DEFAULT_KAFKA_VERSION
    kafka_host: str = "127.0.0.1"
    kafka_port: int = 9092
    controller_port: int = 9093
    kafka_heap: str = "1g"
    broker_timeout: float = 90.0
    """Seconds to wait for the local broker to answer an admin call after start."""
    cache_dir: Path = _home(".cache", "streamlearn")  # noqa: RUF009 (fixed at import)
    """Where resolved Kafka jars live (``<cache_dir>/kafka/<version>``), reused across runs."""
    state_dir: Path = _home(".local", "state", "streamlearn")  # noqa: RUF009
    """Broker data, logs and pid file; worker state."""
    java: str = "java"
    mvn: str = "mvn"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    """Port of the worker's Prometheus /metrics endpoint; 0 turns it off."""
    batch_size: int = 500
    """Most events the worker takes from the consumer at once (it never waits to fill one)."""
    max_event_bytes: int = 1_000_000
    """Events larger than this go to the dead-letter topic (``too_large``)."""
    model_key: Secret = Secret("")  # noqa: RUF009 (immutable)
    """HMAC-SHA256 key that signs model snapshots; required with an external broker."""
    model_keys_old: Secret = Secret("")  # noqa: RUF009 (immutable)
    """Former model keys, comma-separated: snapshots they signed still verify (rotation)."""
    snapshot_every: int = 100_000
    """Snapshot a model after this many examples learned since the last snapshot... (a
    checkpoint also writes every changed entity's whole window: rarer checkpoints spread
    that over more events; 10,000 wrote ~1 KB per event to ``<name>.state`` in the soak)"""
    snapshot_interval: float = 60.0
    """...or after this many seconds with progress, whichever comes first."""
    labels_ahead_max: int = 100_000
    """Global learning: labels of one partition that may wait for their events (read ahead
    of them, as in a backlog); beyond it the worker stops reading that partition of
    ``<name>.labels`` until half have found theirs, so memory and checkpoints stay bounded."""
    idle_after: float = 1.0
    """Global learning: seconds an input partition must stay read to its end, with nothing
    new, before the operators that merge it with others stop waiting for it (the label
    join, the learner's order). Until then they wait, so what they make of the records does
    not depend on read speed; a partition that stays silent longer holds up nothing."""
    publish_interval: float = 2.0
    """Global learning: seconds between the learner's snapshots that predictors serve (at
    least 20x the time the last one took to pickle: unpickling it holds a predictor's GIL)."""
    snapshots_kept: int = 3
    """Snapshots kept per model in ``<name>.models``; older ones are deleted (tombstones)."""
    snapshot_chunk_bytes: int = 512 * 1024
    """Snapshot pickles are split in records of this size (below the broker's limit)."""
    session_timeout: float = 10.0
    """Seconds before the group gives a silent (killed) worker's partitions to another."""
    processing_guarantee: str = "at_least_once"
    """``exactly_once``: a worker's outputs and the input offsets they reflect commit in one
    Kafka transaction, so a ``read_committed`` consumer sees each output once, across
    crashes. ``at_least_once``: a crash replays outputs since the last checkpoint."""
    commit_interval: float = 0.2
    """Under exactly-once, seconds between transaction commits: what a ``read_committed``
    consumer waits at most for an output, beyond its processing."""
    transactional_id: str = ""
    """Under exactly-once, this worker's identity across restarts (e.g. a pod's name):
    unique per worker. A restarted worker with the same one aborts what its predecessor
    left open at once; without it, the broker does after 10 s."""
    events_retention_hours: float = 24.0 * 30
    """Retention of an events topic the worker creates (-1: forever); replay rebuilds from it."""
    drift: str = "on"
    """``off`` turns drift detection off (concept and data)."""
    drift_adwin_delta: float = 0.002
    """ADWIN's confidence (smaller: fewer false alarms, later detection), for every ADWIN."""
    drift_reference_events: int = 1000
    """Values per field that make the data-drift reference (when bootstrap gave none)."""
    drift_psi_every: int = 10_000
    """Events of a partition between two computations of each field's stability index
    (PSI): counted in events, not seconds, so replaying the log rebuilds the same indexes."""
    drift_psi_threshold: float = 0.25
    """A stability index above this is a data-drift event (0.1 moderate, 0.25 large)."""

    security_protocol: str = "PLAINTEXT"
    """How clients reach Kafka: PLAINTEXT, SSL (TLS) or SASL_SSL (TLS and a SCRAM login)."""
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: Secret = Secret("")  # noqa: RUF009 (immutable)
    sasl_password_file: Path | None = None
    """A file holding the SASL password (read when a client connects), instead of the value."""
    ssl_ca_file: Path | None = None
    """PEM of the CA that signed the broker's certificate (default: the system's; with the
    local broker's SASL_SSL or SSL listener, the CA it generated)."""
    ssl_cert_file: Path | None = None
    """PEM client certificate, for brokers that require one (TLS client authentication)."""
    ssl_key_file: Path | None = None
    ssl_key_password: Secret = Secret("")  # noqa: RUF009 (immutable)
    broker_sasl_port: int = 0
    """Port of a SASL_SSL listener on the local broker (127.0.0.1); 0: none."""
    broker_ssl_port: int = 0
    """Port of an SSL listener on the local broker (127.0.0.1) that requires a client
    certificate signed by the local CA (the launcher makes one); 0: none."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = PREFIX + f.name.upper()
            if var in env:
                values[f.name] = _parse(f.name, var, env[var], _PARSERS[f.type])
        if PREFIX + "DRIFT_PSI_INTERVAL" in env:
            raise ConfigError("drift_psi_every", PREFIX + "DRIFT_PSI_EVERY",
                              "STREAMLEARN_DRIFT_PSI_INTERVAL (seconds) is gone: the index is "
                              "computed every N events of a partition, so a replay rebuilds it")
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        optional_ports = ("metrics_port", "broker_sasl_port", "broker_ssl_port")
        for name in ("kafka_port", "controller_port", *optional_ports):
            port = getattr(self, name)
            optional = name in optional_ports
            if not 0 <= port <= 65535 or (port == 0 and not optional):
                raise ConfigError(name, PREFIX + name.upper(), f"{port} is not a valid port")
        if self.kafka_port == self.controller_port:
            raise ConfigError(
                "controller_port", "STREAMLEARN_CONTROLLER_PORT", "must differ from kafka_port"
            )
        if self.broker_sasl_port in (self.kafka_port, self.controller_port):
            raise ConfigError("broker_sasl_port", "STREAMLEARN_BROKER_SASL_PORT",
                              "must differ from kafka_port and controller_port")
        if self.broker_ssl_port and self.broker_ssl_port in (
                self.kafka_port, self.controller_port, self.broker_sasl_port):
            raise ConfigError("broker_ssl_port", "STREAMLEARN_BROKER_SSL_PORT",
                              "must differ from kafka_port, controller_port and "
                              "broker_sasl_port")
        self._validate_security()
        for name in ("batch_size", "max_event_bytes", "snapshot_every", "snapshots_kept",
                     "snapshot_chunk_bytes", "drift_reference_events", "labels_ahead_max"):
            if getattr(self, name) < 1:
                raise ConfigError(name, PREFIX + name.upper(), "must be >= 1")
        if self.snapshot_interval <= 0:
            raise ConfigError("snapshot_interval", "STREAMLEARN_SNAPSHOT_INTERVAL", "must be > 0")
        if self.publish_interval <= 0:
            raise ConfigError("publish_interval", "STREAMLEARN_PUBLISH_INTERVAL", "must be > 0")
        if not 6 <= self.session_timeout <= 1800:
            raise ConfigError(
                "session_timeout", "STREAMLEARN_SESSION_TIMEOUT",
                "must be within the broker's default bounds, 6 to 1800 (seconds)",
            )
        if self.processing_guarantee not in GUARANTEES:
            raise ConfigError("processing_guarantee", "STREAMLEARN_PROCESSING_GUARANTEE",
                              f"{self.processing_guarantee!r} is not one of "
                              + ", ".join(GUARANTEES))
        if not 0 < self.commit_interval <= 5:
            raise ConfigError("commit_interval", "STREAMLEARN_COMMIT_INTERVAL",
                              "must be > 0 and <= 5 (seconds; transactions time out after 10)")
        if self.drift not in ("on", "off"):
            raise ConfigError("drift", "STREAMLEARN_DRIFT", "must be on or off")
        if not 0 < self.drift_adwin_delta < 1:
            raise ConfigError("drift_adwin_delta", "STREAMLEARN_DRIFT_ADWIN_DELTA",
                              "must be between 0 and 1")
        if self.idle_after <= 0:
            raise ConfigError("idle_after", "STREAMLEARN_IDLE_AFTER", "must be > 0")
        for name in ("drift_psi_every", "drift_psi_threshold"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, PREFIX + name.upper(), "must be > 0")
        if self.broker_timeout <= 0:
            raise ConfigError("broker_timeout", "STREAMLEARN_BROKER_TIMEOUT", "must be > 0")

    def _validate_security(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError("security_protocol", "STREAMLEARN_SECURITY_PROTOCOL",
                              f"{self.security_protocol!r} is not one of "
                              + ", ".join(SECURITY_PROTOCOLS))
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError("sasl_mechanism", "STREAMLEARN_SASL_MECHANISM",
                              f"{self.sasl_mechanism!r} is not one of "
                              + ", ".join(SASL_MECHANISMS))
        if self.broker_sasl_port and not (self.sasl_username and self.has_sasl_password):
            raise ConfigError("sasl_username", "STREAMLEARN_SASL_USERNAME",
                              "the local broker's SASL listener (STREAMLEARN_BROKER_SASL_PORT) "
                              "needs a user: set it and STREAMLEARN_SASL_PASSWORD")
        if self.security_protocol == "SASL_SSL":
            if not self.sasl_username:
                raise ConfigError("sasl_username", "STREAMLEARN_SASL_USERNAME",
                                  "required with STREAMLEARN_SECURITY_PROTOCOL=SASL_SSL")
            if not self.has_sasl_password:
                raise ConfigError("sasl_password", "STREAMLEARN_SASL_PASSWORD",
                                  "required with STREAMLEARN_SECURITY_PROTOCOL=SASL_SSL (or set "
                                  "STREAMLEARN_SASL_PASSWORD_FILE)")
        if (self.security_protocol != "PLAINTEXT" and not self.uses_external_broker
                and not self._local_listener_port):
            raise ConfigError("security_protocol", "STREAMLEARN_SECURITY_PROTOCOL",
                              "the local broker serves SASL_SSL on "
                              "STREAMLEARN_BROKER_SASL_PORT and SSL on "
                              "STREAMLEARN_BROKER_SSL_PORT: set the port of "
                              f"{self.security_protocol}, or STREAMLEARN_BOOTSTRAP to reach "
                              "another Kafka")
        if bool(self.ssl_cert_file) != bool(self.ssl_key_file):
            raise ConfigError("ssl_key_file", "STREAMLEARN_SSL_KEY_FILE",
                              "a client certificate needs both STREAMLEARN_SSL_CERT_FILE and "
                              "STREAMLEARN_SSL_KEY_FILE")

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == "exactly_once"

    @property
    def has_sasl_password(self) -> bool:
        return bool(self.sasl_password or self.sasl_password_file)

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def local_tls_dir(self) -> Path:
        """Certificates of the local broker's SASL_SSL and SSL listeners; ``ca.pem`` is for
        clients, and ``client.pem``/``client.key`` (with the SSL listener) a client's
        certificate signed by the local CA."""
        return self.broker_dir / "tls"

    @property
    def _local_listener_port(self) -> int:
        """The local broker's port for ``security_protocol`` (0: it has no such listener)."""
        ports = {"PLAINTEXT": self.kafka_port, "SASL_SSL": self.broker_sasl_port,
                 "SSL": self.broker_ssl_port}
        return ports.get(self.security_protocol, 0)

    @property
    def uses_external_broker(self) -> bool:
        return bool(self.bootstrap)

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect: the external Kafka, or the local broker's listener that
        matches ``security_protocol``."""
        if self.bootstrap:
            return self.bootstrap
        return f"{self.kafka_host}:{self._local_listener_port or self.kafka_port}"

    @property
    def kafka_dir(self) -> Path:
        """Jar cache of the configured Kafka version."""
        return self.cache_dir / "kafka" / self.kafka_version

    @property
    def broker_dir(self) -> Path:
        """Data, config, log and pid file of the local broker."""
        return self.state_dir / "broker"


_PARSERS: dict[Any, Callable[[str], Any]] = {
    "str": str,
    "Secret": Secret,
    "int": int,
    "float": float,
    "Path": lambda v: Path(v).expanduser(),
    "Path | None": lambda v: Path(v).expanduser() if v else None,
}


def _parse(name: str, var: str, raw: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(raw)
    except ValueError:
        kind = getattr(parse, "__name__", "value")
        raise ConfigError(name, var, f"{raw!r} is not a valid {kind}") from None


def load_settings() -> Settings:
    """Settings of this process (from ``os.environ``)."""
    return Settings.from_env()
