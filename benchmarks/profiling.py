"""Where a contender's CPU goes: py-spy samples taken from outside while it runs.

Samples are taken with native frames (``--native``), so time inside librdkafka (consume,
produce, poll, flush) shows as such rather than as the Python line that called it. Each
sample is charged to a category by its innermost frame that names one, walking outwards:
librdkafka and confluent-kafka's C side; River's drift detectors and streamlearn's drift
code; the metrics (River's and ``models.scoring``); the rest of River (the model); derived
features; decoding and validation (``decode_event``, the typed schema, orjson's loads);
encoding (the prediction and served records, orjson's dumps); Prometheus; the host and
loop libraries; the rest of streamlearn (the loop, the processor, checkpoints). Frames of
the standard library and of the interpreter are skipped; samples with no library frame
below the event loop's scheduling are "event loop".

>>> raw = "main (x.py:1);Handle._run (asyncio/events.py:80);f (faust/streams.py:9) 3\\n"
>>> raw += "main (x.py:1);Handle._run (asyncio/events.py:80);g (river/a.py:1) 1\\n"
>>> shares, total, _ = categorize(raw)
>>> total, shares["faust (streams, conductor, consumer, events)"], shares["model (river)"]
(4, 0.75, 0.25)
>>> raw = "step (streamlearn/streams/hot_path.py:9);rd_kafka_consume_batch (librdkafka.so) 2\\n"
>>> raw += "_predict (streamlearn/streams/processor.py:1);update (river/drift/adwin.py:3) 1\\n"
>>> raw += "encode_served (streamlearn/kafka/records.py:9);orjson_dumps (orjson.so) 1\\n"
>>> shares, _, _ = categorize(raw)
>>> [(name, f"{share:.2f}") for name, share in shares.items()]
[('librdkafka (consume, produce, poll, flush)', '0.50'), ('drift', '0.25'), ('encoding', '0.25')]
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
    ("librdkafka (consume, produce, poll, flush)", ("librdkafka", "cimpl", "rd_kafka")),
    ("drift", ("river/drift/", "streamlearn/models/drift.py", "streamlearn/models/data_drift.py",
               "streamlearn/streams/served_drift.py")),
    ("metrics (River's, models.scoring)", ("river/metrics/", "river/utils/rolling",
                                           "streamlearn/models/scoring.py")),
    ("model (river)", ("river/",)),
    ("features", ("streamlearn/features/",)),
    ("decoding and validation", ("decode_event (", "streamlearn/spec/schema.py", "_forwarded (",
                                 "orjson_loads", "loads (orjson")),
    ("encoding", ("encode_", "orjson_dumps", "dumps (orjson")),
    ("prometheus (metrics export)", ("prometheus_client/", "streamlearn/monitoring/")),
    ("streamlearn (loop, processor, checkpoints)", ("streamlearn/",)),
    ("faust (streams, conductor, consumer, events)", ("faust/",)),
    ("mode (services, wait_first, queues)", ("mode/",)),
    ("aiokafka (client, producer, fetcher)", ("aiokafka/",)),
    ("confluent-kafka (Python side)", ("confluent_kafka/",)),
    ("hand-written loop", ("benchmarks/",)),
)
_NATIVE_PASS = ("orjson",)
"""Native frames that say what was called but not what for: the Python caller decides
(orjson's loads of an event is decoding, its dumps of a record encoding)."""
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
        if any(m in frame for m in _NATIVE_PASS) or _native(frame):
            continue  # the interpreter's or an extension's own frame: its caller says why
        return "other", frame
    return EVENT_LOOP, frames[-1] if frames else ""


def _native(frame: str) -> bool:
    """A frame of native code (``--native``): no ``.py`` file in it."""
    return ".py:" not in frame


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
            # --native needs the blocking mode (the process is paused for each sample):
            # fewer samples a second, and the shares are read, not the run's speed.
            [tool, "record", "-p", str(proc.pid), "-r", "100", "-f", "raw", "-o", str(out),
             "--native"],
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
