"""What the broker needs from the machine: Java, free ports, control of its process.

Each check fails fast with the fix in its message.

>>> parse_java_major('openjdk version "17.0.15" 2025-04-15')
17
>>> parse_java_major('java version "1.8.0_392"')
8
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from streamlearn.broker.jars import uses_log4j2
from streamlearn.config import Settings
from streamlearn.errors import BrokerError

__all__ = [
    "check_java",
    "check_ports_free",
    "parse_java_major",
    "pid_alive",
    "signal_pid",
    "wait_gone",
]

JAVA_MISSING = (
    "java not found: install Java >= 17 (apt-get install openjdk-17-jre-headless) "
    "or set STREAMLEARN_JAVA"
)
_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def parse_java_major(version_output: str) -> int | None:
    """Major Java version in ``java -version`` output (``1.8`` counts as 8)."""
    match = _JAVA_VERSION.search(version_output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java(settings: Settings) -> str:
    """Path of a Java recent enough for ``settings.kafka_version``."""
    java = shutil.which(settings.java)
    if java is None:
        raise BrokerError(JAVA_MISSING)
    # Kafka 4 brokers need Java 17; 3.x ran on 11.
    needed = 17 if uses_log4j2(settings.kafka_version) else 11
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BrokerError(f"java could not run ({e}): check STREAMLEARN_JAVA") from None
    major = parse_java_major(result.stderr + result.stdout)
    if major is not None and major < needed:
        raise BrokerError(
            f"java {major} is too old for Kafka {settings.kafka_version}: install Java >= "
            f"{needed} (apt-get install openjdk-17-jre-headless) or set STREAMLEARN_JAVA"
        )
    return java


def check_ports_free(settings: Settings) -> None:
    """Fail before starting a JVM when a port the broker needs is taken."""
    ports = [
        ("kafka_port", "STREAMLEARN_KAFKA_PORT", settings.kafka_port),
        ("controller_port", "STREAMLEARN_CONTROLLER_PORT", settings.controller_port),
    ]
    if settings.broker_sasl_port:
        ports.append(("broker_sasl_port", "STREAMLEARN_BROKER_SASL_PORT",
                      settings.broker_sasl_port))
    if settings.broker_ssl_port:
        ports.append(("broker_ssl_port", "STREAMLEARN_BROKER_SSL_PORT",
                      settings.broker_ssl_port))
    for name, env, port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # Like the JVM's server sockets: ignore TIME_WAIT leftovers of a previous run.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((settings.kafka_host, port))
            except OSError as e:
                raise BrokerError(
                    f"cannot listen on {settings.kafka_host}:{port} ({name}): "
                    f"{e.strerror or e}; stop what uses port {port} or set {env} to a free port"
                ) from None


def pid_alive(pid: int, must_contain: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, if given, its command line has ``must_contain``.

    The command line check guards against a recycled pid in a stale pid file.
    """
    # Reap our own exited child, else it lingers as a zombie that os.kill still sees.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return must_contain is None
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():  # no procfs (macOS): trust the signal probe
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    if state in ("Z", "X"):
        return False
    return must_contain is None or must_contain in cmdline


def signal_pid(pid: int, sig: signal.Signals, group: bool = False) -> None:
    """Send ``sig`` to ``pid`` (or its process group); a process already gone is fine."""
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``pid`` to end; whether it did."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True
