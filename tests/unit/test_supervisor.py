"""`streamlearn run --workers N`: the supervisor, with small Python scripts as its children."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamlearn.cli import main
from streamlearn.errors import StreamlearnError
from streamlearn.streams.supervisor import Child, supervise, worker_children

ROOT = Path(__file__).resolve().parents[2]

# Says it is ready once its SIGTERM handler is in place, then waits for the signal.
WAITS_FOR_SIGTERM = """
import os, signal, sys
signal.signal(signal.SIGTERM, lambda s, f: (print("got", s, flush=True), sys.exit({code})))
print("ready on port", os.environ["STREAMLEARN_METRICS_PORT"], flush=True)
while True:
    signal.pause()
"""


def child(index: int, script: str, port: int = 0) -> Child:
    return Child(index, (sys.executable, "-c", script), port)


class Output:
    """The supervisor's stdout; ``when_ready(n, action)`` runs action after n ready lines."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.ready = 0
        self.action: tuple[int, object] | None = None
        self.lock = threading.Lock()

    def write(self, data: bytes) -> int:
        with self.lock:
            self.lines.append(data)
            if b"ready" in data:
                self.ready += 1
                if self.action and self.ready == self.action[0]:
                    self.action[1]()  # type: ignore[operator]
        return len(data)

    def flush(self) -> None:
        pass


def send_self(signum: int) -> None:
    os.kill(os.getpid(), signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_goes_to_every_child_and_the_supervisor_waits_for_all(signum) -> None:
    out = Output()
    out.action = (2, lambda: send_self(signum))
    # SIGINT: the scripts' SIGTERM handler does not apply; Python's KeyboardInterrupt ends
    # them as killed by SIGINT (128 + 2).
    children = [child(i, WAITS_FOR_SIGTERM.format(code=0), 9000 + i) for i in range(2)]
    exits: list[tuple[int, int, int]] = []
    before = signal.getsignal(signal.SIGTERM)
    code = supervise(children, dict(os.environ), out,  # type: ignore[arg-type]
                     lambda c, rc, running: exits.append((c.index, rc, running)))
    text = b"".join(out.lines).decode()
    assert "[worker 0] ready on port 9000\n" in text
    assert "[worker 1] ready on port 9001\n" in text
    assert sorted(i for i, _, _ in exits) == [0, 1]
    assert [running for *_, running in exits] == [1, 0]
    if signum == signal.SIGTERM:
        assert code == 0 and text.count("got 15") == 2
    else:
        assert code == 130 and text.count("KeyboardInterrupt") == 2
    assert signal.getsignal(signal.SIGTERM) is before, "the handler is restored"


def test_others_keep_running_after_one_exits_and_the_first_failure_is_the_exit_code() -> None:
    out = Output()
    exits: list[tuple[int, int]] = []

    def exited(c: Child, code: int, running: int) -> None:
        exits.append((c.index, code))
        if c.index == 1:  # worker 0 still runs: once it is ready, stop it (it exits with 5)
            deadline = time.monotonic() + 60
            while not out.ready and time.monotonic() < deadline:
                time.sleep(0.05)
            send_self(signal.SIGTERM)

    children = [child(0, WAITS_FOR_SIGTERM.format(code=5)),
                child(1, "import sys; sys.exit(3)")]
    code = supervise(children, dict(os.environ), out, exited)  # type: ignore[arg-type]
    assert exits == [(1, 3), (0, 5)]
    assert code == 3


def test_a_child_killed_by_a_signal_exits_as_128_plus_the_signal() -> None:
    killed = child(0, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert supervise([killed], dict(os.environ), Output()) == 128 + 9  # type: ignore[arg-type]


def test_output_without_a_final_newline_still_ends_its_line() -> None:
    out = Output()
    supervise([child(3, "import sys; sys.stdout.write('a\\nb')")], dict(os.environ),
              out)  # type: ignore[arg-type]
    assert b"".join(out.lines) == b"[worker 3] a\n[worker 3] b\n"


def test_worker_children_ports_and_commands() -> None:
    children = worker_children("p.py", None, 3, 9108, executable="py", verbose=True)
    assert [c.metrics_port for c in children] == [9108, 9109, 9110]
    assert children[0].argv == ("py", "-m", "streamlearn", "-v", "run", "p.py")
    assert [c.metrics_port for c in worker_children("p.py", None, 2, 0)] == [0, 0]
    with pytest.raises(StreamlearnError, match="STREAMLEARN_METRICS_PORT"):
        worker_children("p.py", None, 3, 65534)


def test_cli_refuses_rebuild_with_several_workers() -> None:
    env = {"STREAMLEARN_BOOTSTRAP": "127.0.0.1:1", "STREAMLEARN_BROKER_TIMEOUT": "0.5"}
    result = CliRunner().invoke(
        main, ["run", str(ROOT / "examples" / "phishing.py"), "--workers", "2", "--rebuild"],
        env=env)
    assert result.exit_code == 1
    assert "--rebuild relearns with one worker" in result.output
