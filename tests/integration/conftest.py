"""A real Kafka broker for the whole session, and helpers that run real workers against it.

The broker is the project's own launcher (jars from Maven Central, KRaft, 127.0.0.1) on free
ports with its own state dir, unless STREAMLEARN_BOOTSTRAP names one to use instead. If it
cannot start, the tests fail: they are never skipped.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamlearn.broker import LocalBroker
from streamlearn.broker.tls import CLIENT_CERT, CLIENT_KEY
from streamlearn.config import Settings
from streamlearn.kafka.admin import create_topics
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.spec.topics import topic_configs

ROOT = Path(__file__).resolve().parents[2]
MODEL_KEY = "integration-test-key"
SASL_USER = "streamlearn-test"
SASL_PASSWORD = "it-sasl-" + uuid.uuid4().hex  # unique, so a grep for it means a leak
SESSION_TIMEOUT_S = 6  # the broker's minimum: a killed worker's partitions move in ~6 s


def free_port() -> int:
    """A free port to listen on, below the kernel's ephemeral range: a port the kernel hands
    out (bind to 0) can be taken by any client's outgoing connection before the server
    binds it (CI saw a worker refuse to start: "Address already in use")."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(10_000, max(low, 10_001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # (no luck below the range: let the kernel choose)
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class SecuredKafka:
    """The session broker's SASL_SSL listener and what a client needs to use it."""

    bootstrap: str
    ca_file: Path

    def env(self, password: str = SASL_PASSWORD) -> dict[str, str]:
        return {
            "STREAMLEARN_BOOTSTRAP": self.bootstrap,
            "STREAMLEARN_SECURITY_PROTOCOL": "SASL_SSL",
            "STREAMLEARN_SASL_USERNAME": SASL_USER,
            "STREAMLEARN_SASL_PASSWORD": password,
            "STREAMLEARN_SSL_CA_FILE": str(self.ca_file),
        }

    def settings(self) -> Settings:
        return Settings.from_env(self.env())


@dataclass(frozen=True)
class SslKafka:
    """The session broker's SSL listener, which requires a client certificate its CA signed,
    and the PEM files a client needs: the CA, the certificate the launcher made, its key."""

    bootstrap: str
    ca_file: Path
    cert_file: Path
    key_file: Path

    def env(self, cert: bool = True) -> dict[str, str]:
        """Settings of an SSL client: with the client certificate, or (``cert=False``) the
        CA only."""
        env = {
            "STREAMLEARN_BOOTSTRAP": self.bootstrap,
            "STREAMLEARN_SECURITY_PROTOCOL": "SSL",
            "STREAMLEARN_SSL_CA_FILE": str(self.ca_file),
        }
        if cert:
            env["STREAMLEARN_SSL_CERT_FILE"] = str(self.cert_file)
            env["STREAMLEARN_SSL_KEY_FILE"] = str(self.key_file)
        return env

    def settings(self, cert: bool = True) -> Settings:
        return Settings.from_env(self.env(cert))


@pytest.fixture(scope="session")
def broker_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings | None]:
    """Settings of the session's own broker (None with STREAMLEARN_BOOTSTRAP): PLAINTEXT for
    most tests, and SASL_SSL and SSL (client certificates) listeners on the same broker for
    the secured ones."""
    if os.environ.get("STREAMLEARN_BOOTSTRAP"):
        yield None
        return
    settings = Settings.from_env(
        {
            **{k: v for k, v in os.environ.items() if k.startswith("STREAMLEARN_")},
            "STREAMLEARN_STATE_DIR": str(tmp_path_factory.mktemp("kafka-state")),
            "STREAMLEARN_KAFKA_PORT": str(free_port()),
            "STREAMLEARN_CONTROLLER_PORT": str(free_port()),
            "STREAMLEARN_BROKER_SASL_PORT": str(free_port()),
            "STREAMLEARN_BROKER_SSL_PORT": str(free_port()),
            "STREAMLEARN_SASL_USERNAME": SASL_USER,
            "STREAMLEARN_SASL_PASSWORD": SASL_PASSWORD,
        }
    )
    broker = LocalBroker(settings)
    broker.start()
    try:
        yield settings
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka(broker_settings: Settings | None) -> str:
    """Bootstrap address (PLAINTEXT) of a running broker."""
    if broker_settings is None:
        return os.environ["STREAMLEARN_BOOTSTRAP"]
    return LocalBroker(broker_settings).bootstrap


@pytest.fixture(scope="session")
def secured_kafka(broker_settings: Settings | None) -> SecuredKafka:
    """The same broker's SASL_SSL listener (SCRAM-SHA-512 user, CA made by the launcher)."""
    if broker_settings is None:
        pytest.skip("STREAMLEARN_BOOTSTRAP names an external broker: no SASL_SSL listener "
                    "of ours to test against")
    host, port = broker_settings.kafka_host, broker_settings.broker_sasl_port
    return SecuredKafka(f"{host}:{port}", broker_settings.local_tls_dir / "ca.pem")


@pytest.fixture(scope="session")
def ssl_kafka(broker_settings: Settings | None) -> SslKafka:
    """The same broker's SSL listener (client certificates required) and the client
    certificate and key the launcher made, signed by its CA."""
    if broker_settings is None:
        pytest.skip("STREAMLEARN_BOOTSTRAP names an external broker: no SSL listener of ours "
                    "to test against")
    host, port = broker_settings.kafka_host, broker_settings.broker_ssl_port
    tls_dir = broker_settings.local_tls_dir
    return SslKafka(f"{host}:{port}", tls_dir / "ca.pem", tls_dir / CLIENT_CERT,
                    tls_dir / CLIENT_KEY)


@pytest.fixture
def name() -> str:
    """A pipeline name no other test uses, so topics and groups never collide."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def worker_env(kafka: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    env.update(
        STREAMLEARN_BOOTSTRAP=kafka,
        STREAMLEARN_STATE_DIR=str(tmp_path / "state"),
        STREAMLEARN_METRICS_PORT=str(free_port()),
        STREAMLEARN_MODEL_KEY=MODEL_KEY,
        STREAMLEARN_SESSION_TIMEOUT=str(SESSION_TIMEOUT_S),
    )
    return env


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``streamlearn run FILE --name NAME`` as a real process; stopped at teardown.

    Worker ``i`` logs to ``worker-<i>.log``; ``env`` adds settings to the shared ones.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(pipeline_file: str | Path, name: str, env: dict[str, str] | None = None,
              metrics_port: int | None = None, args: tuple[str, ...] = ()
              ) -> subprocess.Popen[bytes]:
        settings = {**worker_env, **(env or {})}
        if metrics_port is not None:
            settings["STREAMLEARN_METRICS_PORT"] = str(metrics_port)
        with open(tmp_path / f"worker-{len(started)}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "streamlearn", "run", str(pipeline_file), "--name", name,
                 *args],
                env=settings, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def worker_log(tmp_path: Path, index: int = 0) -> str:
    return (tmp_path / f"worker-{index}.log").read_text(errors="replace")


EXAMPLE = ROOT / "examples" / "phishing.py"


@pytest.fixture
def topics(kafka: str) -> Callable[[str], None]:
    """Create a pipeline's topics under another name, as ``streamlearn run`` does."""

    def create(name: str, pipeline_file: Path = EXAMPLE) -> None:
        spec = load_pipeline(pipeline_file).renamed(name)
        create_topics(kafka, spec.topics, topic_configs(spec, Settings()))

    return create
