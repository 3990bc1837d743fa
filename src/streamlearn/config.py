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
    snapshot_every: int = 10_000
    """Snapshot a model after this many examples learned since the last snapshot..."""
    snapshot_interval: float = 60.0
    """...or after this many seconds with progress, whichever comes first."""
    snapshots_kept: int = 3
    """Snapshots kept per model in ``<name>.models``; older ones are deleted (tombstones)."""
    snapshot_chunk_bytes: int = 512 * 1024
    """Snapshot pickles are split in records of this size (below the broker's limit)."""
    session_timeout: float = 10.0
    """Seconds before the group gives a silent (killed) worker's partitions to another."""
    events_retention_hours: float = 24.0 * 30
    """Retention of an events topic the worker creates (-1: forever); replay rebuilds from it."""
    drift: str = "on"
    """``off`` turns drift detection off (concept and data)."""
    drift_adwin_delta: float = 0.002
    """ADWIN's confidence (smaller: fewer false alarms, later detection), for every ADWIN."""
    drift_reference_events: int = 1000
    """Values per field that make the data-drift reference (when bootstrap gave none)."""
    drift_psi_interval: float = 60.0
    """Seconds between two computations of each field's stability index (PSI)."""
    drift_psi_threshold: float = 0.25
    """A stability index above this is a data-drift event (0.1 moderate, 0.25 large)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = PREFIX + f.name.upper()
            if var in env:
                values[f.name] = _parse(f.name, var, env[var], _PARSERS[f.type])
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for name in ("kafka_port", "controller_port", "metrics_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535 or (port == 0 and name != "metrics_port"):
                raise ConfigError(name, PREFIX + name.upper(), f"{port} is not a valid port")
        if self.kafka_port == self.controller_port:
            raise ConfigError(
                "controller_port", "STREAMLEARN_CONTROLLER_PORT", "must differ from kafka_port"
            )
        for name in ("batch_size", "max_event_bytes", "snapshot_every", "snapshots_kept",
                     "snapshot_chunk_bytes", "drift_reference_events"):
            if getattr(self, name) < 1:
                raise ConfigError(name, PREFIX + name.upper(), "must be >= 1")
        if self.snapshot_interval <= 0:
            raise ConfigError("snapshot_interval", "STREAMLEARN_SNAPSHOT_INTERVAL", "must be > 0")
        if not 6 <= self.session_timeout <= 1800:
            raise ConfigError(
                "session_timeout", "STREAMLEARN_SESSION_TIMEOUT",
                "must be within the broker's default bounds, 6 to 1800 (seconds)",
            )
        if self.drift not in ("on", "off"):
            raise ConfigError("drift", "STREAMLEARN_DRIFT", "must be on or off")
        if not 0 < self.drift_adwin_delta < 1:
            raise ConfigError("drift_adwin_delta", "STREAMLEARN_DRIFT_ADWIN_DELTA",
                              "must be between 0 and 1")
        for name in ("drift_psi_interval", "drift_psi_threshold"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, PREFIX + name.upper(), "must be > 0")
        if self.broker_timeout <= 0:
            raise ConfigError("broker_timeout", "STREAMLEARN_BROKER_TIMEOUT", "must be > 0")

    @property
    def uses_external_broker(self) -> bool:
        return bool(self.bootstrap)

    @property
    def bootstrap_servers(self) -> str:
        return self.bootstrap or f"{self.kafka_host}:{self.kafka_port}"

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
