"""`streamlearn run --workers 2`: two workers, each with its metrics port, both stopped by
one SIGTERM to the command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from .conftest import EXAMPLE, ROOT, free_port
from .topics import wait_until


def two_free_ports() -> int:
    """A port p with p + 1 free too."""
    return wait_until(lambda: next((p for p in [free_port()] if _free(p + 1)), None), 10,
                      "two consecutive free ports", every=0.01)


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as page:
            return b"streamlearn_" in page.read()
    except OSError:
        return False


def test_two_workers_serve_metrics_and_one_sigterm_stops_both(name, worker_env,
                                                              tmp_path: Path):
    base = two_free_ports()
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        # Its own session, so that a failed test can stop the whole tree.
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlearn", "run", str(EXAMPLE), "--name", name,
             "--workers", "2"],
            env={**worker_env, "STREAMLEARN_METRICS_PORT": str(base)},
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
        )

    def output() -> str:
        return log_path.read_text(errors="replace")

    def ready(i: int) -> bool:
        return any(line.startswith(f"[worker {i}]") and "[^Worker]: Ready" in line
                   for line in output().splitlines())

    try:
        for port in (base, base + 1):
            wait_until(lambda port=port: proc.poll() is None and answers(port), 120,
                       f"metrics on port {port}")
        # In its first half second (imports), SIGTERM still has its default action on a
        # worker (it dies, exit code 143); once ready, it must stop cleanly.
        wait_until(lambda: ready(0) and ready(1), 60, "both workers ready")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=90)
    except BaseException:
        print(output())
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = output()
    assert code == 0, text
    for i in (0, 1):
        assert f"worker {i}: metrics http://127.0.0.1:{base + i}/metrics" in text
        assert f"worker {i} exited with code 0" in text
    assert "1 stand by" in text, "phishing has one partition"
