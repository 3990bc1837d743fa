"""A contender in its own process: start, CPU time, stop, peak RSS."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ContenderProcess", "Exit"]

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Exit:
    returncode: int
    peak_rss_mb: float
    """Highest VmHWM seen while it ran (rusage's ru_maxrss would include the harness's
    RSS at fork time, which Linux carries over into the child's maxrss across exec)."""
    cpu_s: float
    """User + system CPU of the whole process life."""


class ContenderProcess:
    def __init__(self, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
        full_env.update(env)
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                cwd=log_path.parent, start_new_session=True,
            )
        self.pid = self.proc.pid
        self.exit: Exit | None = None
        self._peak_kb = 0

    def cpu_seconds(self) -> float:
        """CPU (user + system, all threads) used so far; 0 once the process is gone."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def sample_memory(self) -> None:
        """Note the process's peak RSS so far (VmHWM); called on every poll."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self._peak_kb = max(self._peak_kb, int(line.split()[1]))
                return

    def running(self) -> bool:
        self.sample_memory()
        return self.exit is None and self._reap(os.WNOHANG) is None

    def wait(self, timeout: float) -> Exit | None:
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        return self.exit

    def stop(self, timeout: float = 20.0) -> Exit:
        """SIGTERM, then SIGKILL after ``timeout``; the exit with the process's rusage."""
        if self.exit is None:
            self.sample_memory()
            self.proc.send_signal(signal.SIGTERM)
        if self.wait(timeout) is None:
            os.killpg(self.pid, signal.SIGKILL)
            self._reap(0)
        assert self.exit is not None
        return self.exit

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def _reap(self, options: int) -> Exit | None:
        pid, status, usage = os.wait4(self.pid, options)
        if pid == 0:
            return None
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.exit = Exit(
            returncode=self.proc.returncode,
            peak_rss_mb=self._peak_kb / 1024,
            cpu_s=usage.ru_utime + usage.ru_stime,
        )
        return self.exit
