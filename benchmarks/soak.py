"""Soak: the worker at a fraction of its maximum rate for a long time (``make soak``).

The fraud pipeline (``benchmarks/pipelines/fraud.py``: 7 per-card windowed features, then
a logistic regression; drift detection on) on ``streamlearn.datasets.fraud`` events keyed
by card, one partition, a fresh model. First its maximum rate, as the harness measures it
(backlog throughput of a fresh worker, median of runs), on a backlog long enough to fill the
feature windows (a simulated day, ~173,000 events) and counted from there: an event costs
more once they are full, and a short backlog overstates the rate the worker can hold. Then
a paced feed at ``fraction`` of it for ``minutes``, sampled every ``step`` seconds: consumer
lag (input end offset - the group's committed offset), the worker's RSS (VmRSS) and CPU,
this process's and the machine's CPU, and per window of send time the latency of each
prediction (its LogAppendTime - its event's CreateTime). Pass criteria and definitions:
``benchmarks/soak_report.py``; results under ``benchmarks/results`` (``soak.md``,
``soak.png``, ``soak.json``).

``python -m benchmarks.soak [--minutes 30] [--fraction 0.7] [--bootstrap HOST:PORT]``

Without ``--bootstrap`` (or ``STREAMLEARN_BOOTSTRAP``) it starts a broker of its own on
free loopback ports in a scratch directory, and removes it afterwards.

>>> opts, _ = parse(["--minutes", "6"])
>>> opts.seconds, opts.step_s, opts.windows.rss_base, opts.windows.p99_base
(360.0, 2.0, (24.0, 36.0), (60.0, 120.0))
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from benchmarks import machine, soak_report
from benchmarks.contenders import STREAMLEARN_ENV, Contender, select
from benchmarks.harness import measure, remove_topics
from benchmarks.kafka_io import OffsetProbe, produce_all
from benchmarks.options import RESULTS
from benchmarks.phases import Input
from benchmarks.process import ContenderProcess
from benchmarks.runs import Bench, RunFailed, RunResult, Window
from benchmarks.soak_probes import (
    GroupProbe,
    PacedFeed,
    PredictionReader,
    Sample,
    horizon_index,
)
from benchmarks.soak_report import Limits, Windows
from benchmarks.stats import median, rate_from_timestamps
from benchmarks.workloads import WORKLOADS, event_ids, make_events, pipeline_of
from streamlearn.datasets import fraud

__all__ = ["SoakOptions", "SoakRun", "main", "parse", "run_soak"]

WORKLOAD = WORKLOADS["fraud"]
HORIZON_MS = pipeline_of(WORKLOAD.key).feature_set.horizon_ms
"""The longest feature window: state grows until the events span it."""
# Contender A, with drift detection on explicitly (the worker's default).
WORKER: Contender = replace(select(["A"])[0], env={**STREAMLEARN_ENV, "STREAMLEARN_DRIFT": "on"})


@dataclass(frozen=True)
class SoakOptions:
    seconds: float = 1800.0
    fraction: float = 0.7
    """Of the measured maximum rate."""
    step_s: float = 10.0
    """Sampling period, and the width of each latency window."""
    windows: Windows = field(default_factory=lambda: Windows.scaled(1800.0))
    limits: Limits = field(default_factory=Limits)
    ceiling_events: int = 250_000
    """Backlog of the maximum-rate runs: its rate counts the events after the feature
    windows are full (after ~173,000 fraud events), when the backlog reaches that far."""
    ceiling_reps: int = 2
    ceiling_warmup: int = 0
    """Leading maximum-rate runs discarded (the harness discards its first round; a run
    this long warms the broker up before its steady part)."""
    drain_timeout: float = 60.0
    """Seconds after the last send for every prediction to arrive."""
    out_dir: Path = RESULTS
    stem: str = "soak"

    @classmethod
    def for_duration(cls, seconds: float, **changes: Any) -> SoakOptions:
        """Windows scaled from the 30-minute definitions; a step of 1/180 of the run."""
        return cls(seconds=seconds, step_s=float(max(1, round(seconds / 180))),
                   windows=Windows.scaled(seconds), **changes)


@dataclass
class SoakRun:
    """What one soak run saw."""

    rate: float
    samples: list[Sample]
    feed: PacedFeed
    reader: PredictionReader
    drain_s: float | None = None
    error: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def broker(bootstrap: str | None) -> Iterator[tuple[str, str | None]]:
    """(bootstrap, version of the broker we started, if we did): the one given, or one of
    our own on free ports in a scratch directory, stopped and removed afterwards."""
    from streamlearn.broker import LocalBroker
    from streamlearn.config import Settings, load_settings

    given = bootstrap or load_settings().bootstrap
    if given:
        yield given, None
        return
    state = Path(tempfile.mkdtemp(prefix="streamlearn-soak-broker-"))
    environ = {k: v for k, v in os.environ.items() if k.startswith("STREAMLEARN_")}
    settings = Settings.from_env({
        **environ,
        "STREAMLEARN_STATE_DIR": str(state),
        "STREAMLEARN_KAFKA_PORT": str(free_port()),
        "STREAMLEARN_CONTROLLER_PORT": str(free_port()),
    })
    local = LocalBroker(settings)
    try:
        yield local.start(), settings.kafka_version
    finally:
        local.stop()
        shutil.rmtree(state, ignore_errors=True)


def prepare_backlog(bench: Bench, n: int) -> Input:
    """``n`` fraud events on a topic of their own (the harness's ``prepare_inputs`` without
    the model-only contender's input file, which A does not read)."""
    topic = f"{bench.prefix}ceiling.events"
    events = make_events(n, f"{bench.run_id}-ceiling", WORKLOAD.source)
    bench.create_topic(topic)
    produce_all(bench.bootstrap, topic, events)
    return Input(WORKLOAD.key, topic, events, Path("/dev/null"),
                 event_ids(WORKLOAD.key, events))


def ceiling_run(bench: Bench, data: Input, steady_from: int | None, result: RunResult) -> None:
    """``phases.throughput_run`` for A, plus the rate over the outputs from ``steady_from``
    on (the events that find the feature windows full)."""
    run = bench.spec(data.workload, data.topic, data.events_file)
    proc = bench.start(WORKER, run)
    window = Window()
    try:
        bench.watch(proc, run.output_topic, len(data.events), window)
    finally:
        result.peak_rss_mb = proc.stop().peak_rss_mb
    records = bench.collect(result, run, data.ids)
    result.cpu_us_per_event = window.cpu_us_per_event()
    if steady_from is not None:
        steady = rate_from_timestamps(stamp for _, stamp in records[steady_from:])
        result.extra["steady_events_per_s"] = steady


def measure_ceiling(bench: Bench, opts: SoakOptions, console: Console) -> list[RunResult]:
    """The worker's backlog throughput on this pipeline, as the harness measures it, on a
    backlog long enough to fill the feature windows."""
    console.rule(f"maximum rate: {opts.ceiling_events:,} events of backlog, "
                 f"{opts.ceiling_reps} runs + {opts.ceiling_warmup} discarded")
    data = prepare_backlog(bench, opts.ceiling_events)
    steady_from = horizon_index((orjson.loads(v)[fraud.TIME_FIELD] for _, v in data.events),
                                HORIZON_MS)
    results = []
    for rep in range(opts.ceiling_warmup + opts.ceiling_reps):
        result = RunResult(WORKER.key, WORKLOAD.key, "throughput", rep,
                           rep < opts.ceiling_warmup, events=len(data.events))
        result.extra["steady_from"] = steady_from
        run = functools.partial(ceiling_run, bench, data, steady_from)
        results.append(measure(result, run, console))
        if result.extra.get("steady_events_per_s"):
            console.print(f"  from event {steady_from:,} on (feature windows full): "
                          f"{result.extra['steady_events_per_s']:,.0f} ev/s")
    return results


def ceiling_rate(results: list[RunResult]) -> float:
    """Median over the measured runs of the rate with full feature windows, or of the whole
    run's where the backlog was too short to fill them."""
    measured = [r for r in results if r.ok and not r.warmup]
    rate = median(r.extra.get("steady_events_per_s") or r.events_per_s for r in measured)
    if not rate:
        raise RunFailed("no maximum rate: every measured run failed")
    return rate


def _check(proc: ContenderProcess, feed: PacedFeed, reader: PredictionReader) -> None:
    if not proc.running():
        raise RunFailed(f"the worker exited:\n{proc.log_tail()}")
    for thread in (feed, reader):
        if thread.error is not None:
            raise RunFailed(f"{thread.name}: {thread.error!r}")


def wait_joined(probe: GroupProbe, proc: ContenderProcess, timeout: float) -> None:
    """Until the worker holds its partition, so startup is not counted as lag."""
    deadline = time.monotonic() + timeout
    while not probe.joined():
        if not proc.running():
            raise RunFailed(f"the worker exited before joining:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            raise RunFailed(f"the worker did not join its group in {timeout:g} s")
        time.sleep(0.5)


def sample_run(run: SoakRun, proc: ContenderProcess, probe: GroupProbe, opts: SoakOptions,
               console: Console) -> None:
    """A sample every ``step_s`` of the feed's time, a progress line every 1/30 of the run."""
    feed, reader = run.feed, run.reader
    per_line = max(1, round(opts.seconds / 30 / opts.step_s))
    for tick in range(1, int(opts.seconds / opts.step_s) + 1):
        time.sleep(max(0.0, feed.t0 + tick * opts.step_s - time.perf_counter()))
        _check(proc, feed, reader)
        run.samples.append(probe.sample(tick * opts.step_s, feed.produced, proc))
        if tick % per_line == 0:
            console.print(soak_report.progress_line(run.samples[-1], reader, opts.step_s))


def drain(run: SoakRun, proc: ContenderProcess, timeout: float) -> float | None:
    """Seconds from the last send until every event is answered; None after ``timeout``."""
    run.feed.join(timeout)
    start = time.perf_counter()
    while run.reader.answered < run.feed.produced:
        _check(proc, run.feed, run.reader)
        if time.perf_counter() - start > timeout:
            return None
        time.sleep(0.1)
    return time.perf_counter() - start


def soak(bench: Bench, rate: float, opts: SoakOptions, console: Console) -> SoakRun:
    """The worker at ``rate`` events/s for ``opts.seconds``; never raises once it runs."""
    topic = f"{bench.prefix}soak.events"
    bench.create_topic(topic)
    spec = bench.spec(WORKLOAD.key, topic, Path("/dev/null"))
    feed = PacedFeed(bench.bootstrap, topic, f"{bench.prefix}soak", rate, opts.seconds,
                     HORIZON_MS)
    run = SoakRun(rate, [], feed, PredictionReader(bench.bootstrap, spec.output_topic, feed,
                                                   opts.step_s))
    probe = GroupProbe(bench.bootstrap, topic, spec.output_topic, spec.group)
    proc = bench.start(WORKER, spec)
    try:
        wait_joined(probe, proc, bench.start_timeout)
        console.rule(f"soak: {rate:,.0f} events/s for {opts.seconds / 60:g} min")
        run.reader.start()
        feed.start()
        sample_run(run, proc, probe, opts, console)
        run.drain_s = drain(run, proc, opts.drain_timeout)
    except RunFailed as exc:
        run.error = str(exc)
        console.print(f"[red]soak failed: {run.error}[/red]")
    finally:
        feed.halt.set()
        proc.stop()
        run.reader.halt.set()
        run.reader.join(10)
        probe.close()
    return run


def run_soak(opts: SoakOptions, bootstrap: str | None, console: Console) -> dict[str, Any]:
    """Measure the maximum rate, soak at a fraction of it, write the report; return it."""
    with broker(bootstrap) as (address, configured):
        environment = machine.describe(address, configured)
        workdir = Path(tempfile.mkdtemp(prefix="streamlearn-soak-"))
        console.print(f"broker {address}, scratch {workdir}")
        probe = OffsetProbe(address)
        bench = Bench(address, workdir, probe)
        try:
            ceiling = measure_ceiling(bench, opts, console)
            run = soak(bench, opts.fraction * ceiling_rate(ceiling), opts, console)
        finally:
            probe.close()
            remove_topics(bench, console)
    built = soak_report.build(run, ceiling, environment, opts)
    paths = soak_report.write(built, opts.out_dir, opts.stem)
    soak_report.print_summary(built, console)
    console.print(f"written: {', '.join(str(p) for p in paths)}")
    return built


def parse(argv: list[str] | None = None) -> tuple[SoakOptions, str | None]:
    """(options, the --bootstrap given)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0,
                        help="Soak duration; the criteria's windows scale with it (30: "
                             "RSS of minute 2-3 against the last, p99 of minutes 5-10 "
                             "against the last 5).")
    parser.add_argument("--fraction", type=float, default=0.7,
                        help="Of the measured maximum rate (default 0.7).")
    parser.add_argument("--step", type=float, help="Seconds between samples (default: "
                                                   "1/180 of the run, at least 1).")
    parser.add_argument("--ceiling-events", type=int, default=250_000,
                        help="Backlog of each maximum-rate run (its rate counts the events "
                             "after the feature windows are full, if it reaches them).")
    parser.add_argument("--bootstrap", help="Use this broker instead of one of our own.")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Directory for the report.")
    parser.add_argument("--stem", default="soak", help="File name stem (default soak).")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or not 0 < args.fraction <= 1:
        parser.error("need --minutes > 0 and 0 < --fraction <= 1")
    opts = SoakOptions.for_duration(args.minutes * 60, fraction=args.fraction,
                                    ceiling_events=args.ceiling_events, out_dir=args.out,
                                    stem=args.stem)
    return (replace(opts, step_s=args.step) if args.step else opts), args.bootstrap


def main(argv: list[str] | None = None) -> int:
    opts, bootstrap = parse(argv)
    built = run_soak(opts, bootstrap, Console())
    return 0 if built["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
