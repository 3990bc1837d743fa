"""Resolve the Kafka broker's jars from Maven Central, once per version.

Kafka ships no runnable artifact on Maven Central, but ``kafka_2.13`` plus a logging
backend is a complete broker. Maven resolves that dependency tree into
``<settings.kafka_dir>/libs``; a marker file written after the copy makes later calls
(and other processes) reuse the directory without starting Maven again.

>>> "log4j-slf4j-impl" in render_pom("4.1.1") and "reload4j" in render_pom("3.9.1")
True
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from string import Template

from streamlearn.config import Settings
from streamlearn.errors import BrokerError

__all__ = [
    "is_cached",
    "libs_dir",
    "log_config_name",
    "log_config_text",
    "render_pom",
    "resolve_jars",
    "uses_log4j2",
]

log = logging.getLogger(__name__)

MARKER = ".complete"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
# A stalled download must end in an error, not a hang; a cold fetch takes ~30 s.
MVN_TIMEOUT_S = 900.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Kafka >= 4 logs through log4j2 but pins slf4j-api 1.7, so it needs the SLF4J 1.x
# binding of log4j2; Kafka 3.x logs through reload4j.
_LOG4J2 = [
    ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3"),
    ("org.apache.logging.log4j", "log4j-core", "2.24.3"),
]
_RELOAD4J = [
    ("org.slf4j", "slf4j-reload4j", "1.7.36"),
    ("ch.qos.reload4j", "reload4j", "1.2.25"),
]


def uses_log4j2(version: str) -> bool:
    """Whether Kafka ``version`` logs through log4j2 (4.0 on) rather than reload4j.

    >>> uses_log4j2("4.1.1"), uses_log4j2("3.9.1")
    (True, False)
    """
    major = version.split(".", 1)[0]
    if not major.isdigit():
        raise BrokerError(
            f"bad Kafka version {version!r}: expected e.g. 4.1.1 (set STREAMLEARN_KAFKA_VERSION)"
        )
    return int(major) >= 4


def log_config_name(version: str) -> str:
    """File name of the logging config the broker of ``version`` reads."""
    return "log4j2.properties" if uses_log4j2(version) else "log4j.properties"


def log_config_text(version: str) -> str:
    """Logging config that sends the broker's log to ``${kafka.logs.dir}/server.log``."""
    return _package_text(log_config_name(version))


def render_pom(version: str) -> str:
    """The POM whose runtime dependencies are a complete Kafka ``version`` broker."""
    artifacts = _LOG4J2 if uses_log4j2(version) else _RELOAD4J
    deps = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId>"
        "<version>{}</version></dependency>".format(*a)
        for a in artifacts
    )
    template = Template(_package_text("kafka-pom.xml"))
    return template.substitute(kafka_version=version, logging_dependencies=deps)


def libs_dir(settings: Settings) -> Path:
    return settings.kafka_dir / "libs"


def is_cached(settings: Settings) -> bool:
    """Whether a complete jar set of ``settings.kafka_version`` is already on disk."""
    return (settings.kafka_dir / MARKER).is_file() and libs_dir(settings).is_dir()


def resolve_jars(settings: Settings) -> Path:
    """Directory holding every jar of the configured Kafka version; fetched on first use."""
    if is_cached(settings):
        return libs_dir(settings)
    mvn = find_mvn(settings)
    settings.kafka_dir.mkdir(parents=True, exist_ok=True)
    # Two processes starting at once must not both run Maven into the same directory.
    with file_lock(settings.kafka_dir / ".lock"):
        if is_cached(settings):
            return libs_dir(settings)
        log.info(
            "fetching Kafka %s jars with Maven into %s (first run only, ~30 s)",
            settings.kafka_version,
            settings.kafka_dir,
        )
        started = time.monotonic()
        _fetch(mvn, settings.kafka_version, settings.kafka_dir)
        log.info(
            "fetched Kafka %s jars in %.0f s", settings.kafka_version, time.monotonic() - started
        )
    return libs_dir(settings)


def find_mvn(settings: Settings) -> str:
    mvn = shutil.which(settings.mvn)
    if mvn is None:
        raise BrokerError(
            "mvn not found: install Maven (apt-get install maven) or set STREAMLEARN_MVN"
        )
    return mvn


def _fetch(mvn: str, version: str, kafka_dir: Path) -> None:
    """Run Maven into a scratch dir, then move it into place so ``libs`` is never partial."""
    with tempfile.TemporaryDirectory(prefix="fetch-", dir=kafka_dir) as tmp:
        scratch = Path(tmp)
        (scratch / "pom.xml").write_text(render_pom(version), encoding="utf-8")
        out = scratch / "libs"
        cmd = [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(scratch / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={out}",
        ]
        result = _run_mvn(cmd, version)
        if result.returncode != 0 or not any(out.glob("*.jar")):
            raise BrokerError(
                f"mvn could not fetch Kafka {version} (exit {result.returncode}): "
                f"{_maven_error(result.stdout + result.stderr)} "
                "(check STREAMLEARN_KAFKA_VERSION and access to Maven Central)"
            )
        target = kafka_dir / "libs"
        shutil.rmtree(target, ignore_errors=True)
        out.rename(target)
    (kafka_dir / MARKER).write_text(f"kafka {version}\n", encoding="utf-8")


def _run_mvn(cmd: list[str], version: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=MVN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise BrokerError(
            f"mvn did not fetch Kafka {version} within {MVN_TIMEOUT_S:.0f} s: "
            "check the network access to Maven Central (or your ~/.m2/settings.xml mirror)"
        ) from None
    except OSError as e:
        raise BrokerError(f"mvn could not run ({e}): check STREAMLEARN_MVN") from None


def _maven_error(output: str) -> str:
    """Maven's first ``[ERROR]`` paragraph says what failed; the rest is boilerplate help."""
    lines = [_ANSI.sub("", line).rstrip() for line in output.splitlines()]
    errors: list[str] = []
    for line in lines:
        if line.startswith("[ERROR]"):
            text = line.removeprefix("[ERROR]").strip().removesuffix("-> [Help 1]").strip()
            if not text and errors:
                break
            if text:
                errors.append(text)
    chosen = errors or [line.strip() for line in lines if line.strip()][-5:]
    return " | ".join(chosen) if chosen else "no output"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing), shared across processes."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _package_text(name: str) -> str:
    return resources.files("streamlearn.broker").joinpath(name).read_text(encoding="utf-8")
