"""One run of one contender: start it, watch its output topic, stop it, check its output."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks.contenders import Contender, RunSpec
from benchmarks.kafka_io import OffsetProbe, create_topic, read_back
from benchmarks.process import ContenderProcess
from benchmarks.stats import rate_from_timestamps

__all__ = ["Bench", "RunFailed", "RunResult", "check_outputs"]

POLL_S = 0.2


class RunFailed(RuntimeError):
    """A contender crashed, stalled, or did not produce one output per input."""


@dataclass
class RunResult:
    contender: str
    workload: str
    phase: str
    rep: int
    warmup: bool
    events: int
    outputs: int = 0
    missing: int = 0
    duplicates: int = 0
    events_per_s: float | None = None
    cpu_us_per_event: float | None = None
    peak_rss_mb: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.missing == 0 and self.duplicates == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class Window:
    """CPU and output count when the first output showed up, and when the last did."""

    cpu_start: float = 0.0
    count_start: int = 0
    cpu_end: float = 0.0
    count_end: int = 0

    def cpu_us_per_event(self) -> float | None:
        done = self.count_end - self.count_start
        return (self.cpu_end - self.cpu_start) / done * 1e6 if done > 0 else None


@dataclass
class Bench:
    """What every run shares: the broker, a scratch directory, and the offset probe."""

    bootstrap: str
    workdir: Path
    probe: OffsetProbe
    start_timeout: float = 90.0
    stall_timeout: float = 60.0
    _names: itertools.count = field(default_factory=itertools.count)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    topics: list[str] = field(default_factory=list)
    """Every topic this benchmark made (or had a contender make), to delete at the end."""

    @property
    def prefix(self) -> str:
        """Every topic and group name of this benchmark run starts with it."""
        return f"bench-{self.run_id}-"

    def create_topic(self, name: str, log_append_time: bool = False) -> None:
        create_topic(self.bootstrap, name, log_append_time)
        self.topics.append(name)

    def spec(self, workload: str, input_topic: str, events_file: Path) -> RunSpec:
        name = f"{self.prefix}{next(self._names)}"
        return RunSpec(
            self.bootstrap, workload, input_topic, name, events_file, self.workdir / name
        )

    def start(self, contender: Contender, run: RunSpec) -> ContenderProcess:
        run.state_dir.mkdir(parents=True, exist_ok=True)
        if contender.uses_kafka:
            self.create_topic(run.output_topic, log_append_time=True)
            self.topics.append(f"{run.name}.dlq")
        env = {
            "STREAMLEARN_BOOTSTRAP": self.bootstrap,
            "STREAMLEARN_METRICS_PORT": "0",
            "STREAMLEARN_STATE_DIR": str(run.state_dir),
            "BENCH_EVENTS_TOPIC": run.input_topic,
            **contender.env,
        }
        return ContenderProcess(contender.argv(run), env, run.state_dir / "contender.log")

    def outputs(self, topic: str) -> int:
        """Records ``topic`` holds so far: its end offset. (A transactional producer's
        commit markers take offsets too; ``guarantees.CommittedBench`` counts records.)"""
        return self.probe.end(topic)

    def watch(self, proc: ContenderProcess, topic: str, target: int, window: Window) -> None:
        """Block until ``topic`` holds ``target`` records; note CPU at first and last output."""
        last_count, last_change = -1, time.monotonic()
        limit = self.start_timeout
        while True:
            count = self.outputs(topic)
            if count > window.count_start and window.cpu_start == 0.0:
                window.cpu_start, window.count_start = proc.cpu_seconds(), count
            if count >= target:
                window.cpu_end, window.count_end = proc.cpu_seconds(), count
                return
            if not proc.running():
                raise RunFailed(f"exited early ({count}/{target} outputs):\n{proc.log_tail()}")
            if count != last_count:
                last_count, last_change = count, time.monotonic()
                limit = self.stall_timeout if count > 0 else self.start_timeout
            elif time.monotonic() - last_change > limit:
                raise RunFailed(f"stalled at {count}/{target} outputs:\n{proc.log_tail()}")
            time.sleep(POLL_S)

    def collect(
        self, result: RunResult, run: RunSpec, expected: Collection[bytes]
    ) -> list[tuple[bytes, int]]:
        """Read the output back and count it against the inputs; returns the records."""
        records = read_back(self.bootstrap, run.output_topic)
        check_outputs(result, [eid for eid, _ in records], expected)
        result.events_per_s = rate_from_timestamps(ts for _, ts in records)
        return records


def check_outputs(result: RunResult, ids: list[bytes], expected: Collection[bytes]) -> None:
    """Exactly one output per input: fill in outputs, missing and duplicates.

    >>> r = RunResult("X", "w", "throughput", 0, False, events=3)
    >>> check_outputs(r, [b"a", b"b", b"b"], {b"a", b"b", b"c"})
    >>> r.outputs, r.missing, r.duplicates, r.ok
    (3, 1, 1, False)
    """
    seen = set(ids)
    result.outputs = len(ids)
    result.missing = len(set(expected) - seen)
    result.duplicates = len(ids) - len(seen) + len(seen - set(expected))


def parse_result_line(log: Path) -> dict[str, Any]:
    """The JSON line a local contender prints last."""
    lines = [line for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    if not lines:
        raise RunFailed(f"no result line in {log}")
    parsed: dict[str, Any] = orjson.loads(lines[-1])
    return parsed
