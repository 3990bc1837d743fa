"""``streamlearn run --workers N``: N worker processes of one pipeline under one command.

Each child is ``streamlearn run PIPELINE_FILE [--name NAME]`` with its own metrics port
(``STREAMLEARN_METRICS_PORT`` + its index); its output lines are passed through prefixed
``[worker i]``. SIGTERM and SIGINT are forwarded to every child. A child that exits leaves
the others running (the consumer group gives them its partitions); the supervisor returns
once all have exited, with the first non-zero exit code (128 + N for a child killed by
signal N).

>>> [(c.index, c.metrics_port, c.argv[-3:]) for c in worker_children(
...     "p.py", "fraud-2", 2, 9108, executable="py")]
[(0, 9108, ('p.py', '--name', 'fraud-2')), (1, 9109, ('p.py', '--name', 'fraud-2'))]
"""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from streamlearn.errors import StreamlearnError

__all__ = ["FORWARDED_SIGNALS", "METRICS_PORT_VAR", "Child", "supervise", "worker_children"]

METRICS_PORT_VAR = "STREAMLEARN_METRICS_PORT"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class Child:
    index: int
    argv: tuple[str, ...]
    metrics_port: int
    """0: the child serves no metrics (as the setting's 0 means)."""


def worker_children(pipeline_file: str, name: str | None, workers: int, base_port: int,
                    executable: str = "python", verbose: bool = False) -> list[Child]:
    """The ``streamlearn run`` command of each of ``workers`` children."""
    last = base_port + workers - 1
    if base_port and last > 65535:
        raise StreamlearnError(f"--workers {workers} needs metrics ports {base_port} to {last}: "
                               "set STREAMLEARN_METRICS_PORT lower")
    argv = (executable, "-m", "streamlearn", *(("-v",) if verbose else ()), "run",
            pipeline_file, *(("--name", name) if name else ()))
    return [Child(i, argv, base_port + i if base_port else 0) for i in range(workers)]


def supervise(
    children: list[Child],
    environ: Mapping[str, str],
    out: IO[bytes],
    on_exit: Callable[[Child, int, int], None] = lambda child, code, running: None,
) -> int:
    """Run the children until all have exited; ``on_exit(child, code, still_running)``."""
    procs: list[subprocess.Popen[bytes]] = []
    exits: queue.Queue[tuple[Child, int]] = queue.Queue()
    write = threading.Lock()
    stopping: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        stopping.append(signum)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS}
    try:
        for child in children:
            if stopping:  # stopped while starting: the rest never start
                break
            env = {**environ, METRICS_PORT_VAR: str(child.metrics_port),
                   "PYTHONUNBUFFERED": "1"}
            proc = subprocess.Popen(child.argv, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
            procs.append(proc)
            if stopping:  # the signal came while it started
                proc.send_signal(stopping[0])
            threading.Thread(target=_pass_through, args=(child, proc, out, write, exits),
                             daemon=True).start()
        first_error = 0
        for running in range(len(procs) - 1, -1, -1):
            child, code = exits.get()
            on_exit(child, code, running)
            first_error = first_error or code
        return first_error
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _pass_through(child: Child, proc: subprocess.Popen[bytes], out: IO[bytes],
                  write: threading.Lock, exits: queue.Queue[tuple[Child, int]]) -> None:
    """Copy the child's output, each line prefixed, then report its exit code."""
    prefix = f"[worker {child.index}] ".encode()
    assert proc.stdout is not None
    for line in proc.stdout:
        with write:
            out.write(prefix + line + (b"" if line.endswith(b"\n") else b"\n"))
            out.flush()
    code = proc.wait()
    exits.put((child, 128 - code if code < 0 else code))
