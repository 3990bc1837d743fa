"""Where a contender's CPU goes: py-spy samples taken from outside while it runs.

Each sample is charged to the library of its innermost frame outside the standard library;
samples inside the event loop's own scheduling (no library frame below it) are "event loop".
Time inside a C extension (librdkafka's ``consume``/``produce``/``flush``, orjson) is charged
to the Python frame that called it: py-spy samples Python stacks only (no ``--native``).

>>> raw = "main (x.py:1);Handle._run (asyncio/events.py:80);f (faust/streams.py:9) 3\\n"
>>> raw += "main (x.py:1);Handle._run (asyncio/events.py:80);g (river/a.py:1) 1\\n"
>>> shares, total, _ = categorize(raw)
>>> total, shares["faust (streams, conductor, consumer, events)"], shares["model (river)"]
(4, 0.75, 0.25)
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.contenders import Contender
from benchmarks.phases import Input
from benchmarks.runs import Bench, Window

__all__ = ["categorize", "profile_run", "pyspy"]

CATEGORIES = (
    ("model (river)", ("river/",)),
    ("streamlearn (hot path, metrics)", ("streamlearn/", "prometheus_client/")),
    ("faust (streams, conductor, consumer, events)", ("faust/",)),
    ("mode (services, wait_first, queues)", ("mode/",)),
    ("aiokafka (client, producer, fetcher)", ("aiokafka/",)),
    ("confluent-kafka (Python side)", ("confluent_kafka/",)),
    ("hand-written loop", ("benchmarks/",)),
)
_STDLIB = re.compile(
    r"\((asyncio|selectors|threading|abc|<frozen|typing|contextlib|functools|collections|"
    r"enum|weakref|_weakrefset|inspect|queue|socket|logging|copy|time|<string>)[/.:]"
)
_LOOP_FRAMES = ("_run_once (asyncio", "Handle._run (asyncio")
EVENT_LOOP = "event loop (asyncio scheduling, select)"


def pyspy() -> str | None:
    return shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.defpath}")


def _category(frames: list[str]) -> tuple[str, str]:
    for frame in reversed(frames):
        if any(marker in frame for marker in _LOOP_FRAMES):
            break
        if not frame.strip() or _STDLIB.search(frame):
            continue
        for name, markers in CATEGORIES:
            if any(m in frame for m in markers):
                return name, frame
        return "other", frame
    return EVENT_LOOP, frames[-1] if frames else ""


def categorize(raw: str) -> tuple[dict[str, float], int, list[tuple[str, float]]]:
    """(share per category, sample count, top leaf frames by share) of py-spy raw output."""
    by_category: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        by_category[_category(frames)[0]] += int(count)
        leaves[frames[-1]] += int(count)
    total = sum(by_category.values())
    if not total:
        return {}, 0, []
    shares = {name: n / total for name, n in by_category.most_common()}
    top = [(frame, n / total) for frame, n in leaves.most_common(15)]
    return shares, total, top


def profile_run(bench: Bench, contender: Contender, data: Input, out: Path) -> dict[str, Any]:
    """One throughput run of ``contender`` sampled by py-spy once its first output is out."""
    tool = pyspy()
    if tool is None:
        return {"error": "py-spy not installed (pip install py-spy)"}
    run = bench.spec(data.workload, data.topic, data.events_file)
    proc = bench.start(contender, run)
    window = Window()
    try:
        bench.watch(proc, run.output_topic, 1, Window())
        spy = subprocess.Popen(
            [tool, "record", "-p", str(proc.pid), "-r", "250", "-f", "raw", "-o", str(out),
             "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        bench.watch(proc, run.output_topic, len(data.events), window)
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    finally:
        proc.stop()
    shares, samples, top = categorize(out.read_text() if out.exists() else "")
    us = window.cpu_us_per_event() or 0.0
    return {
        "contender": contender.key,
        "workload": data.workload,
        "samples": samples,
        "cpu_us_per_event": us,
        "categories": {name: {"share": s, "us_per_event": s * us} for name, s in shares.items()},
        "top_leaf_frames": [{"frame": f, "share": s} for f, s in top],
        "raw_file": str(out),
    }
