"""Every listener the project opens binds the loopback address unless a setting says otherwise.

The listening TCP sockets of a running worker (its metrics endpoint; faust's web server is
off) and of the broker the launcher started are read from /proc, by owner, and each must be
bound to 127.0.0.1 (or ::1, or 127.0.0.1 mapped into IPv6, which the JVM uses).
docker-compose's published ports are checked in ``test_deploy_files.py``.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

from .conftest import EXAMPLE
from .topics import wait_until

LISTEN = "0A"
LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")  # the last: IPv4 loopback on a v6 socket


def _address(hex_address: str) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(host, 16)))
    else:  # /proc prints IPv6 as four little-endian 32-bit words
        words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
        ip = socket.inet_ntop(socket.AF_INET6, b"".join(words))
    return ip, int(port, 16)


def listening() -> dict[int, tuple[str, int]]:
    """Socket inode -> (address, port) of every listening TCP socket on the machine."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN:
                found[int(fields[9])] = _address(fields[1])
    return found


def sockets_of(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def owner_of(port: int) -> int:
    """The pid listening on ``port``."""
    inode = next(i for i, (_, p) in listening().items() if p == port)
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if inode in sockets_of(int(proc.name)):
                    return int(proc.name)
            except OSError:
                continue
    raise AssertionError(f"no process owns the listener on port {port}")


def test_worker_and_broker_listen_on_loopback_only(kafka, name, topics, start_worker,
                                                   worker_env):
    topics(name)
    worker = start_worker(EXAMPLE, name)
    metrics_port = int(worker_env["STREAMLEARN_METRICS_PORT"])
    wait_until(lambda: any(p == metrics_port for _, p in listening().values()), 60,
               "the worker's metrics endpoint")
    broker_pid = owner_of(int(kafka.rsplit(":", 1)[1]))
    table = listening()
    for pid, who in ((worker.pid, "worker"), (broker_pid, "broker")):
        bound = [table[i] for i in sockets_of(pid) if i in table]
        assert bound, f"the {who} listens somewhere"
        exposed = [(ip, port) for ip, port in bound if ip not in LOOPBACK]
        assert not exposed, f"the {who} listens beyond loopback: {exposed}"
