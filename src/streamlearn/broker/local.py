"""A single-node KRaft Kafka broker run from the jar cache, owned through a pid file.

Everything the broker writes lives in ``settings.broker_dir``: ``server.properties``,
the logging config, ``data/`` (formatted once), ``logs/`` and ``kafka.pid``.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streamlearn.broker import jars
from streamlearn.broker.server_config import (
    PROTOCOLS,
    SASL_LISTENER,
    SSL_LISTENER,
    new_cluster_id,
    parse_identity,
    render_server_properties,
    tls_listeners,
)
from streamlearn.broker.system import check_java, check_ports_free, pid_alive, signal_pid, wait_gone
from streamlearn.broker.tls import BrokerTls, ensure_certificates
from streamlearn.broker.users import add_scram_argument, upsert_scram_user
from streamlearn.config import Settings
from streamlearn.errors import BrokerError
from streamlearn.kafka import admin
from streamlearn.kafka.security import plaintext

__all__ = ["BrokerStatus", "LocalBroker"]

log = logging.getLogger(__name__)

# The storage format tool takes ~2 s; one that runs longer than this is stuck.
_TOOL_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class BrokerStatus:
    """What ``streamlearn broker status`` reports about the local broker."""

    running: bool
    """A process named by the pid file is alive."""
    pid: int | None
    bootstrap: str
    log_path: Path
    version: str
    ready: bool = False
    """The running broker answered an admin call."""


class LocalBroker:
    """Start, stop and inspect the broker of ``settings.broker_dir``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.broker_dir
        self.config_path = self.dir / "server.properties"
        self.pid_path = self.dir / "kafka.pid"
        self.log_dir = self.dir / "logs"
        self.log_path = self.log_dir / "server.log"
        self.out_path = self.log_dir / "kafka.out"
        # Not settings.bootstrap_servers: that names the external cluster when one is set.
        self.bootstrap = f"{settings.kafka_host}:{settings.kafka_port}"
        # The launcher's own admin calls use the PLAINTEXT listener, whatever clients use.
        self.admin_settings = plaintext(settings)

    @property
    def pid(self) -> int | None:
        """Pid of the running broker started from this state dir, if any."""
        return self._pid(forget_stale=False)

    def start(self) -> str:
        """Start the broker unless it runs already; return its bootstrap address."""
        self.dir.mkdir(parents=True, exist_ok=True)
        # Serialises concurrent starts: the second one finds the first one's broker.
        with jars.file_lock(self.dir / ".lock"):
            pid = self._pid(forget_stale=True)
            if pid is not None:
                return self._attach(pid)
            return self._launch()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); False if none ran."""
        pid = self._pid(forget_stale=True)
        if pid is None:
            return False
        log.info("stopping kafka (pid %d)", pid)
        # SIGTERM makes Kafka shut down cleanly, so the next start skips log recovery.
        signal_pid(pid, signal.SIGTERM)
        if not wait_gone(pid, timeout):
            log.warning("kafka (pid %d) ignored SIGTERM for %g s; killing it", pid, timeout)
            signal_pid(pid, signal.SIGKILL, group=True)
            wait_gone(pid, 10.0)
        self.pid_path.unlink(missing_ok=True)
        return True

    def status(self, probe_timeout: float = 3.0) -> BrokerStatus:
        pid = self.pid
        version, bootstrap = self.settings.kafka_version, self.bootstrap
        ready = False
        if pid is not None:
            version, bootstrap = self._running_identity()
            try:
                admin.wait_ready(bootstrap, probe_timeout, self.admin_settings)
                ready = True
            except BrokerError:
                pass
        return BrokerStatus(pid is not None, pid, bootstrap, self.log_path, version, ready)

    # -- internals --------------------------------------------------------------------

    def _attach(self, pid: int) -> str:
        version, bootstrap = self._running_identity()
        if bootstrap != self.bootstrap:
            raise BrokerError(
                f"kafka from {self.dir} already runs at {bootstrap} (pid {pid}), not at "
                f"{self.bootstrap}: run `streamlearn broker stop` first, "
                "or set STREAMLEARN_KAFKA_PORT to match"
            )
        self._check_tls_listeners(pid)
        if version != self.settings.kafka_version:
            log.warning(
                "kafka %s is running, not %s: stop it to switch versions",
                version,
                self.settings.kafka_version,
            )
        try:
            admin.wait_ready(bootstrap, self.settings.broker_timeout, self.admin_settings)
        except BrokerError as e:
            raise BrokerError(
                f"kafka (pid {pid}) runs but does not answer at {bootstrap}: {e}; "
                f"see {self.log_path}, or run `streamlearn broker stop` and start again"
            ) from None
        log.info("kafka %s already up at %s (pid %d)", version, bootstrap, pid)
        return bootstrap

    def _launch(self) -> str:
        java = check_java(self.settings)
        check_ports_free(self.settings)
        libs = jars.resolve_jars(self.settings)
        tls = None
        if tls_listeners(self.settings):
            tls = ensure_certificates(self.settings.local_tls_dir, java,
                                      client=bool(self.settings.broker_ssl_port))
        self._write_config(tls)
        formatted_now = self._format_storage(java, libs)
        bootstrap = self.bootstrap
        log_offset = _size(self.log_path)
        started = time.monotonic()
        proc = self._spawn(java, libs)
        self._wait_started(proc, bootstrap, log_offset)
        if self.settings.broker_sasl_port and not formatted_now:
            # Storage formatted before the listener was turned on (or with another password)
            # has no such SCRAM user yet; the controller stores it like --add-scram does.
            upsert_scram_user(bootstrap, self.settings, self.settings.broker_timeout)
        log.info(
            "kafka %s up at %s (pid %d) in %.1f s",
            self.settings.kafka_version,
            bootstrap,
            proc.pid,
            time.monotonic() - started,
        )
        return bootstrap

    def _write_config(self, tls: BrokerTls | None) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_server_properties(self.settings, tls),
                                    encoding="utf-8")
        # It holds the keystore password with a SASL listener: private to the user.
        self.config_path.chmod(0o600)
        log_config = self.dir / jars.log_config_name(self.settings.kafka_version)
        log_config.write_text(jars.log_config_text(self.settings.kafka_version), encoding="utf-8")

    def _jvm_args(self, java: str, libs: Path) -> list[str]:
        version = self.settings.kafka_version
        log_config = self.dir / jars.log_config_name(version)
        prop = "log4j2.configurationFile" if jars.uses_log4j2(version) else "log4j.configuration"
        return [
            java,
            f"-D{prop}=file:{log_config}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            str(libs / "*"),  # the JVM expands the wildcard itself
        ]

    def _format_storage(self, java: str, libs: Path) -> bool:
        """Format once; True if this call did (then SCRAM users were added with it)."""
        if (self.dir / "data" / "meta.properties").is_file():
            return False
        cluster_id = new_cluster_id()
        # C1 only: this JVM lives ~1 s, where full JIT warm-up costs more than it saves.
        cmd = [*self._jvm_args(java, libs), "kafka.tools.StorageTool"]
        cmd.insert(1, "-XX:TieredStopAtLevel=1")
        # Static controller.quorum.voters: format needs no --standalone flag.
        cmd += ["format", "-t", cluster_id, "-c", str(self.config_path), "--ignore-formatted"]
        secret = None
        if self.settings.broker_sasl_port:
            secret = add_scram_argument(self.settings)
            cmd += ["--add-scram", secret]
        _run_tool(cmd, redact=secret)
        log.info("formatted kafka storage in %s (cluster id %s)", self.dir / "data", cluster_id)
        return True

    def _spawn(self, java: str, libs: Path) -> subprocess.Popen[bytes]:
        cmd = [*self._jvm_args(java, libs)]
        cmd.insert(1, f"-Xmx{self.settings.kafka_heap}")
        cmd += ["kafka.Kafka", str(self.config_path)]
        with open(self.out_path, "wb") as out:
            # A new session keeps the broker alive after the CLI exits or gets Ctrl-C.
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,
            )
        _write_atomic(self.pid_path, f"{proc.pid}\n")
        return proc

    def _wait_started(self, proc: subprocess.Popen[bytes], bootstrap: str, offset: int) -> None:
        deadline = time.monotonic() + self.settings.broker_timeout
        while True:
            code = proc.poll()
            if code is not None:
                self.pid_path.unlink(missing_ok=True)
                line, path = self._last_error(offset)
                raise BrokerError(
                    f"kafka exited with code {code} while starting: {line} (see {path})"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill(proc)
                raise BrokerError(
                    f"kafka did not answer at {bootstrap} within "
                    f"{self.settings.broker_timeout:g} s and was stopped: see {self.log_path}, "
                    "or set STREAMLEARN_BROKER_TIMEOUT higher on a slow machine"
                )
            try:
                admin.wait_ready(bootstrap, min(remaining, 2.0), self.admin_settings)
                return
            except BrokerError:
                continue

    def _check_tls_listeners(self, pid: int) -> None:
        try:
            text = self.config_path.read_text(encoding="utf-8")
        except OSError:
            text = ""
        variables = {SASL_LISTENER: "STREAMLEARN_BROKER_SASL_PORT",
                     SSL_LISTENER: "STREAMLEARN_BROKER_SSL_PORT"}
        listed = re.search(r"^listeners=(.*)$", text, re.MULTILINE)
        running = set(listed.group(1).split(",")) if listed else set()
        for name, address in tls_listeners(self.settings).items():
            if f"{name}://{address}" not in running:
                raise BrokerError(
                    f"kafka from {self.dir} (pid {pid}) runs without a {PROTOCOLS[name]} listener "
                    f"on {address}: run `streamlearn broker stop`, then start again to add "
                    f"it ({variables[name]})"
                )

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        signal_pid(proc.pid, signal.SIGKILL, group=True)
        try:
            proc.wait(10.0)
        except subprocess.TimeoutExpired:
            log.warning("kafka (pid %d) survived SIGKILL", proc.pid)
        self.pid_path.unlink(missing_ok=True)

    def _last_error(self, log_offset: int) -> tuple[str, Path]:
        """The most telling line this start wrote, and the file it is in.

        JVM launch failures (bad -Xmx, missing class) print their cause first on stdout;
        Kafka's own fatal errors end its log with the root cause ("Caused by: ...").
        """
        jvm_lines = [line.strip() for line in _read_from(self.out_path, 0) if line.strip()]
        if jvm_lines:
            return jvm_lines[0][:500], self.out_path
        lines = [line.strip() for line in _read_from(self.log_path, log_offset)]
        errors = [
            line
            for line in lines
            if re.search(r"ERROR|FATAL|Exception|Error:", line) and not line.startswith("at ")
        ]
        chosen = (errors or [line for line in lines if line] or ["no output"])[-1]
        return chosen[:500], self.log_path

    def _pid(self, forget_stale: bool) -> int | None:
        """Pid of our running broker per the pid file; a stale file is removed if asked."""
        try:
            pid = int(self.pid_path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None
        if pid_alive(pid, must_contain=str(self.config_path)):
            return pid
        if forget_stale:
            log.info("removing stale pid file %s (pid %d is gone)", self.pid_path, pid)
            self.pid_path.unlink(missing_ok=True)
        return None

    def _running_identity(self) -> tuple[str, str]:
        """(version, bootstrap) of the running broker, from the config it was started with."""
        try:
            text = self.config_path.read_text(encoding="utf-8")
        except OSError:
            text = ""
        version, bootstrap = parse_identity(text)
        return (version or self.settings.kafka_version, bootstrap or self.bootstrap)


def _run_tool(cmd: list[str], redact: str | None = None) -> str:
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=_TOOL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BrokerError(f"kafka storage tool failed: {e}") from None
    if result.returncode != 0:
        output = result.stderr + result.stdout
        if redact:
            output = output.replace(redact, "--add-scram ***")
        tail = output.strip().splitlines()[-1:] or ["no output"]
        raise BrokerError(f"kafka storage tool failed (exit {result.returncode}): {tail[0]}")
    return result.stdout


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
