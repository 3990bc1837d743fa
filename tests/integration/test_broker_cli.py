"""`streamlearn broker start/status/stop` against a real JVM broker on its own free ports.

Independent of the session broker fixture: each test has its own state dir and ports,
and shares only the jar cache (fetched on first use).
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamlearn.broker import (
    LocalBroker,
    create_topics,
    delete_topics,
    ensure_broker,
    topic_partitions,
)
from streamlearn.broker.system import pid_alive
from streamlearn.config import Settings
from streamlearn.errors import BrokerError

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    kafka_port = _free_port()
    controller_port = _free_port()
    while controller_port == kafka_port:
        controller_port = _free_port()
    values = {k: v for k, v in os.environ.items() if k != "STREAMLEARN_BOOTSTRAP"}
    values |= {
        "STREAMLEARN_STATE_DIR": str(tmp_path / "state"),
        "STREAMLEARN_KAFKA_PORT": str(kafka_port),
        "STREAMLEARN_CONTROLLER_PORT": str(controller_port),
        "STREAMLEARN_KAFKA_HEAP": "512m",
    }
    yield values
    # A failed assertion must not leave a JVM behind.
    LocalBroker(Settings.from_env(values)).stop(timeout=10)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamlearn", "broker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a cold jar fetch plus a slow JVM start; never forever
        check=False,
    )


def test_start_status_create_topic_stop(env: dict[str, str]) -> None:
    port = env["STREAMLEARN_KAFKA_PORT"]
    bootstrap = f"127.0.0.1:{port}"

    started = _cli(env, "start")
    assert started.returncode == 0, started.stderr
    assert f"up at {bootstrap} (pid " in started.stdout
    pid = int(re.search(r"\(pid (\d+)", started.stdout).group(1))  # type: ignore[union-attr]
    assert pid_alive(pid)

    status = _cli(env, "status")
    assert status.returncode == 0, status.stderr
    assert f"up at {bootstrap} (pid {pid}," in status.stdout

    t0 = time.monotonic()
    again = _cli(env, "start")
    assert again.returncode == 0 and f"already up at {bootstrap} (pid {pid}," in again.stdout
    assert time.monotonic() - t0 < 15

    settings = Settings.from_env(env)
    assert ensure_broker(settings) == bootstrap
    assert ensure_broker(dataclasses.replace(settings, bootstrap=bootstrap)) == bootstrap

    topic = f"broker-cli-{uuid.uuid4().hex}"
    create_topics(bootstrap, {topic: 3}, {topic: {"retention.ms": "60000"}})
    assert topic_partitions(bootstrap, topic) == 3
    create_topics(bootstrap, {topic: 3})  # idempotent
    with pytest.raises(BrokerError, match=rf"{topic}' has 3 partitions, wanted 2"):
        create_topics(bootstrap, {topic: 2})
    delete_topics(bootstrap, [topic])
    assert topic_partitions(bootstrap, topic) is None

    stopped = _cli(env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"kafka stopped (pid {pid})"
    assert not pid_alive(pid)

    down = _cli(env, "status")
    assert down.returncode == 3
    assert down.stdout.startswith("kafka down")


def test_start_on_a_taken_port_fails_fast_with_one_line(env: dict[str, str]) -> None:
    port = int(env["STREAMLEARN_KAFKA_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        t0 = time.monotonic()
        result = _cli(env, "start")
        elapsed = time.monotonic() - t0
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "STREAMLEARN_KAFKA_PORT" in lines[0]
    assert elapsed < 15
    assert not (Path(env["STREAMLEARN_STATE_DIR"]) / "broker" / "kafka.pid").exists()
