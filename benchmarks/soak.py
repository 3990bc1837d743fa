"""Soak: the worker at a fraction of its maximum rate for a long time (``make soak``).

The fraud pipeline (``benchmarks/pipelines/fraud.py``: 7 per-card windowed features, then
a logistic regression; drift detection on) on ``streamlearn.datasets.fraud`` events keyed
by card, one partition, one worker process through four phases, all on one stream (event
time runs on from phase to phase):

1. **Warm-up**: a backlog that fills the state to its steady size: the events up to a full
   longest window plus the lateness after the first (a simulated day and a minute, ~179,000
   events), plus ``warmup_margin``. The key space (2,000 cards) is complete by event
   ~3,600, no card is idle for more than ~2.3 h of event time against the 2-day TTL, and
   each card holds ~91 events (``max_entity_events`` is 1,000): from there on the state
   neither grows nor shrinks (held events level off at ~182,000; measured in process over
   2.4 million events). Each event costs more as the windows fill (the aggregates are
   recomputed over the window's held events, and each checkpoint writes the changed
   cards' windows), so a rate measured on fresh state overstates what the worker holds;
   the warm-up's throughput and CPU per event over time are reported (cold against warm).
2. **Maximum rate**, on that warm state: ``ceiling_reps`` bursts of ``ceiling_events`` more
   events, each produced at once (librdkafka, ~1 s per 100,000) once the worker has caught
   up; a burst's rate counts the outputs stamped after the producer finished (its
   LogAppendTime stamps, as the harness counts), the backlog maximum is the median of the
   bursts. (The warm-up's own rate past the steady point is reported too: a shorter span.)
3. **Maximum under the soak's conditions** (``paced_max_s``, 0 to skip): the soak's paced
   feed at ``overfeed`` x the backlog maximum, with its prediction reader: the worker falls
   behind and answers as fast as it can while the feed, the reader and the broker's work
   for them share the machine, as they will in the soak; its rate is the maximum the soak
   takes ``fraction`` of. The backlog maximum counts the worker alone; on the 2-CPU machine
   here the soak's own feed, reader and broker take much of the second CPU, and the worker
   holds less (52% of the backlog maximum in one run with other jobs on the machine); on a
   machine with CPUs to spare the two agree. If the worker keeps up with the feed (under
   1 s of events behind when it stops), the backlog maximum stands.
4. **Soak**: a paced feed at ``fraction`` of it for ``minutes``, sampled every ``step``
   seconds: consumer lag (input end offset - the group's committed offset), the worker's
   RSS (VmRSS) and CPU, this process's and the machine's CPU, and per window of send time
   the latency of each prediction (its LogAppendTime - its event's CreateTime). The
   stream's drift (bursts to card testing) comes halfway through.

Pass criteria and definitions: ``benchmarks/soak_report.py``; results under
``benchmarks/results`` (``soak.md``, ``soak.png``, ``soak.json``).

``python -m benchmarks.soak [--minutes 30] [--fraction 0.7] [--bootstrap HOST:PORT]``

Without ``--bootstrap`` (or ``STREAMLEARN_BOOTSTRAP``) it starts a broker of its own on
free loopback ports in a scratch directory, and removes it afterwards.

>>> opts, _ = parse(["--minutes", "6"])
>>> opts.seconds, opts.step_s, opts.windows.rss_base, opts.windows.p99_base
(360.0, 2.0, (24.0, 36.0), (60.0, 120.0))
>>> from streamlearn.datasets.fraud import MEAN_GAP_MS
>>> n, steady = warmup_events(SoakOptions())
>>> steady > STEADY_SPAN_MS / MEAN_GAP_MS * 0.95, n == math.ceil(steady * 1.1)
(True, True)
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import machine, soak_report
from benchmarks.contenders import STREAMLEARN_ENV, Contender, RunSpec, select
from benchmarks.harness import remove_topics
from benchmarks.kafka_io import OffsetProbe
from benchmarks.options import RESULTS
from benchmarks.process import ContenderProcess
from benchmarks.runs import Bench, RunFailed
from benchmarks.soak_probes import (
    GroupProbe,
    PacedFeed,
    PredictionReader,
    Progress,
    Sample,
    Stream,
    encode,
    output_stamps,
    produce_backlog,
)
from benchmarks.soak_report import Limits, Windows
from benchmarks.stats import median, rate_from_timestamps
from benchmarks.workloads import WORKLOADS, pipeline_of

__all__ = ["Burst", "PacedMax", "SoakOptions", "SoakRun", "WarmUp", "main", "parse", "run_soak"]

WORKLOAD = WORKLOADS["fraud"]
_FEATURES = pipeline_of(WORKLOAD.key).feature_set
STEADY_SPAN_MS = _FEATURES.horizon_ms + _FEATURES.lateness_ms
"""Event time after which each card holds as many events as it ever will: its longest
window plus the allowed lateness (``features.online``: what an entity keeps)."""
# Contender A, with drift detection on explicitly (the worker's default).
WORKER: Contender = replace(select(["A"])[0], env={**STREAMLEARN_ENV, "STREAMLEARN_DRIFT": "on"})
PROGRESS_S = 1.0
"""Sampling period during the warm-up and the bursts."""


@dataclass(frozen=True)
class SoakOptions:
    seconds: float = 1800.0
    fraction: float = 0.7
    """Of the measured maximum rate."""
    step_s: float = 10.0
    """Sampling period, and the width of each latency window."""
    windows: Windows = field(default_factory=lambda: Windows.scaled(1800.0))
    limits: Limits = field(default_factory=Limits)
    warmup_margin: float = 0.1
    """Warm-up events beyond the first a full ``STEADY_SPAN_MS`` after the first, as a
    share of them: the cards' held events level off within ~5% past it (measured)."""
    ceiling_events: int = 60_000
    """Events per maximum-rate burst (~10 s of work for a warm worker here)."""
    ceiling_reps: int = 2
    paced_max_s: float = 30.0
    """Seconds of the paced maximum (``paced_ceiling``); 0: none, the soak's rate is a
    fraction of the bursts' (backlog) maximum."""
    overfeed: float = 1.1
    """The paced maximum's feed rate, as a multiple of the backlog maximum: above it, so the
    worker falls behind; not far above, since the feed's own cost grows with its rate."""
    drain_timeout: float = 60.0
    """Seconds after the last send for every prediction to arrive."""
    out_dir: Path = RESULTS
    stem: str = "soak"

    @classmethod
    def for_duration(cls, seconds: float, **changes: Any) -> SoakOptions:
        """Windows scaled from the 30-minute definitions; a step of 1/180 of the run."""
        return cls(seconds=seconds, step_s=float(max(1, round(seconds / 180))),
                   windows=Windows.scaled(seconds), **changes)


def warmup_events(opts: SoakOptions, stream: Stream | None = None) -> tuple[int, int]:
    """(events of the warm-up's backlog, the first a full ``STEADY_SPAN_MS`` of event time
    after the first): up to that one, plus the margin."""
    steady = (stream or Stream()).warm_index(STEADY_SPAN_MS)
    assert steady is not None  # the stream is endless
    return math.ceil(steady * (1 + opts.warmup_margin)), steady


class _Phase:
    """A phase's figures for the report: its fields but the samples (``progress``)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)  # type: ignore[arg-type]
                if f.name != "progress"}


@dataclass
class WarmUp(_Phase):
    """The warm-up backlog and how the worker went through it."""

    events: int
    steady_from: int
    """The first event a full ``STEADY_SPAN_MS`` after the first."""
    progress: list[Progress] = field(default_factory=list)
    seconds: float | None = None
    tail_events_per_s: float | None = None
    """The rate over the events from ``steady_from`` on (output stamps): warm, but ~3 s."""
    tail_cpu_us_per_event: float | None = None


@dataclass
class Burst(_Phase):
    """One maximum-rate burst on warm state."""

    events: int
    start: int
    """Outputs before it: its events' predictions are at offsets ``start`` onwards."""
    produced_s: float = 0.0
    """Seconds the producer took (the worker was already answering)."""
    counted: int = 0
    """Outputs the rate counts: those stamped after the producer finished."""
    events_per_s: float | None = None
    cpu_us_per_event: float | None = None
    progress: list[Progress] = field(default_factory=list)


@dataclass
class PacedMax(_Phase):
    """The worker's rate when fed faster than it can go, with the soak's feed and reader."""

    fed: float
    """Events/s sent (``overfeed`` x the backlog maximum)."""
    seconds: float
    sent: int = 0
    behind: int = 0
    """Events sent but not answered when the feed stopped."""
    events_per_s: float | None = None
    """Answered per second over the last three quarters of the feed."""
    cpu_us_per_event: float | None = None
    drain_s: float | None = None
    progress: list[Progress] = field(default_factory=list)


@dataclass
class SoakRun:
    """What one soak run saw."""

    rate: float
    samples: list[Sample]
    feed: PacedFeed
    reader: PredictionReader
    warmup: WarmUp
    bursts: list[Burst]
    paced: PacedMax | None
    backlog_rate: float
    """The bursts' maximum."""
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


def _check(proc: ContenderProcess, *threads: PacedFeed | PredictionReader) -> None:
    if not proc.running():
        raise RunFailed(f"the worker exited:\n{proc.log_tail()}")
    for thread in threads:
        if thread.error is not None:
            raise RunFailed(f"{thread.name}: {thread.error!r}")


def follow(probe: GroupProbe, proc: ContenderProcess, target: int, stall_s: float,
           progress: list[Progress]) -> None:
    """Sample the worker every ``PROGRESS_S`` until ``target`` outputs; RunFailed if it
    exits or gives none for ``stall_s``."""
    t0 = time.monotonic()
    last_change, last = t0, -1
    while True:
        now = time.monotonic()
        progress.append(probe.progress(now - t0, proc))
        outputs = progress[-1].outputs
        if outputs >= target:
            return
        _check(proc)
        if outputs != last:
            last_change, last = now, outputs
        elif now - last_change > stall_s:
            raise RunFailed(f"stalled at {outputs:,}/{target:,} outputs:\n{proc.log_tail()}")
        time.sleep(max(0.0, t0 + len(progress) * PROGRESS_S - time.monotonic()))


def warm_up(bench: Bench, spec: RunSpec, probe: GroupProbe, stream: Stream, opts: SoakOptions,
            console: Console) -> tuple[ContenderProcess, WarmUp]:
    """Produce the warm-up backlog, start the worker on it, wait until it answered it all."""
    n, steady = warmup_events(opts, stream)
    warm = WarmUp(n, steady)
    console.rule(f"warm-up: {n:,} events of backlog (a full {STEADY_SPAN_MS / 3.6e6:g} h of "
                 f"event time from event {warm.steady_from:,} on)")
    records = (encode(p, f"{bench.prefix}warm-{i}") for i, p in enumerate(stream.events(0, n)))
    produce_backlog(bench.bootstrap, spec.input_topic, records)
    proc = bench.start(WORKER, spec)
    started = time.monotonic()
    follow(probe, proc, n, bench.start_timeout, warm.progress)
    warm.seconds = time.monotonic() - started
    stamps = output_stamps(bench.bootstrap, spec.output_topic, steady, n)
    warm.tail_events_per_s = rate_from_timestamps(stamps)
    tail = next(p for p in warm.progress if p.outputs >= steady)
    end = warm.progress[-1]
    if end.outputs > tail.outputs:
        warm.tail_cpu_us_per_event = (end.cpu_s - tail.cpu_s) / (end.outputs - tail.outputs) * 1e6
    console.print(soak_report.warmup_line(warm))
    return proc, warm


def burst(bench: Bench, spec: RunSpec, probe: GroupProbe, proc: ContenderProcess,
          stream: Stream, first: int, rep: int, opts: SoakOptions) -> Burst:
    """``ceiling_events`` more events at once; the worker's rate on them once produced."""
    start = probe.ends.end(spec.output_topic)
    b = Burst(opts.ceiling_events, start)
    records = [encode(p, f"{bench.prefix}max{rep}-{i}")
               for i, p in enumerate(stream.events(first, b.events))]
    began = time.monotonic()
    produce_backlog(bench.bootstrap, spec.input_topic, records)
    b.produced_s = time.monotonic() - began
    at_produced = probe.progress(0.0, proc)
    follow(probe, proc, start + b.events, bench.stall_timeout, b.progress)
    end = b.progress[-1]
    stamps = output_stamps(bench.bootstrap, spec.output_topic, start, start + b.events)
    skip = at_produced.outputs - start
    b.counted = b.events - skip
    if b.counted > b.events // 4:  # else the producer was too slow to leave a backlog
        b.events_per_s = rate_from_timestamps(stamps[skip:])
        b.cpu_us_per_event = (end.cpu_s - at_produced.cpu_s) / b.counted * 1e6
    return b


def measure_ceiling(bench: Bench, spec: RunSpec, probe: GroupProbe, proc: ContenderProcess,
                    stream: Stream, first: int, opts: SoakOptions, console: Console
                    ) -> list[Burst]:
    bursts: list[Burst] = []
    console.rule(f"maximum rate on warm state: {opts.ceiling_reps} bursts of "
                 f"{opts.ceiling_events:,} events")
    for rep in range(opts.ceiling_reps):
        b = burst(bench, spec, probe, proc, stream, first + rep * opts.ceiling_events, rep,
                  opts)
        console.print(soak_report.burst_line(b))
        bursts.append(b)
    return bursts


def paced_ceiling(bench: Bench, spec: RunSpec, probe: GroupProbe, proc: ContenderProcess,
                  stream: Stream, skip: int, backlog: float, opts: SoakOptions,
                  console: Console) -> PacedMax:
    """The maximum under the soak's conditions: the paced feed (small record batches, the
    broker serving it) and the prediction reader running on the same machine. Fed at
    ``overfeed`` x ``backlog`` for ``paced_max_s``, the worker falls behind at once and
    answers as fast as it can; its rate over the last three quarters of the feed is it.
    Then the backlog drains."""
    m = PacedMax(opts.overfeed * backlog, opts.paced_max_s)
    console.rule(f"maximum rate under the soak's feed and reader: fed {m.fed:,.0f} events/s "
                 f"for {m.seconds:g} s")
    feed = PacedFeed(bench.bootstrap, spec.input_topic, f"{bench.prefix}over", m.fed,
                     m.seconds, stream, skip, drift=False)
    feed.prepare()
    reader = PredictionReader(bench.bootstrap, spec.output_topic, feed, PROGRESS_S,
                              start=probe.ends.end(spec.output_topic))
    reader.start()
    feed.start()
    try:
        while feed.is_alive():
            time.sleep(max(0.0, feed.t0 + (len(m.progress) + 1) * PROGRESS_S
                           - time.perf_counter()))
            _check(proc, feed, reader)
            m.progress.append(probe.progress(time.perf_counter() - feed.t0, proc))
        m.sent = feed.produced
        during = [p for p in m.progress if m.seconds / 4 <= p.t <= m.seconds]
        first, last = (during[0], during[-1]) if during else (None, None)
        m.behind = m.sent - (last.outputs - reader.start_offset if last else 0)
        if first is not None and last is not None and last.t > first.t:
            done = last.outputs - first.outputs
            m.events_per_s = done / (last.t - first.t)
            m.cpu_us_per_event = (last.cpu_s - first.cpu_s) / done * 1e6 if done else None
        started = time.perf_counter()
        while reader.answered < m.sent:
            _check(proc, feed, reader)
            if time.perf_counter() - started > opts.drain_timeout:
                raise RunFailed(f"{m.sent - reader.answered:,} events of the paced maximum "
                                f"unanswered {opts.drain_timeout:g} s after the feed stopped")
            time.sleep(0.2)
        m.drain_s = time.perf_counter() - started
    finally:
        feed.halt.set()
        reader.halt.set()
        reader.join(10)
    console.print(soak_report.paced_line(m))
    return m


def soak_rate(backlog: float, paced: PacedMax | None, opts: SoakOptions) -> float:
    """``fraction`` of the paced maximum; of the backlog one without it, or if the worker
    kept up with the overfeed (under 1 s of events behind: it was no maximum)."""
    if paced is None or paced.events_per_s is None or paced.behind < paced.fed:
        return opts.fraction * backlog
    return opts.fraction * paced.events_per_s


def ceiling_rate(bursts: list[Burst]) -> float:
    """Median over the bursts of their rate on warm state."""
    rate = median(b.events_per_s for b in bursts)
    if not rate:
        raise RunFailed("no maximum rate: no burst left a backlog to measure")
    return rate


def wait_joined(probe: GroupProbe, proc: ContenderProcess, timeout: float) -> None:
    """Until the worker holds its partition (a group that was stable may be rebalancing)."""
    deadline = time.monotonic() + timeout
    while not probe.joined():
        if not proc.running():
            raise RunFailed(f"the worker exited:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            raise RunFailed(f"the worker did not hold its partition within {timeout:g} s")
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


def soak(run: SoakRun, proc: ContenderProcess, probe: GroupProbe, opts: SoakOptions,
         console: Console) -> None:
    """The paced feed at ``run.rate`` for ``opts.seconds``; errors go to ``run.error``."""
    console.rule(f"soak: {run.rate:,.0f} events/s for {opts.seconds / 60:g} min")
    run.reader.start()
    run.feed.start()
    sample_run(run, proc, probe, opts, console)
    run.drain_s = drain(run, proc, opts.drain_timeout)


def run_phases(bench: Bench, opts: SoakOptions, console: Console) -> SoakRun:
    """Warm-up, maximum rate and soak with one worker. A failure before the soak raises
    (there is nothing to report); one during it is the run's ``error``, and fails it."""
    topic = f"{bench.prefix}soak.events"
    bench.create_topic(topic)
    spec = bench.spec(WORKLOAD.key, topic, Path("/dev/null"))
    probe = GroupProbe(bench.bootstrap, topic, spec.output_topic, spec.group)
    stream = Stream()
    proc: ContenderProcess | None = None
    run: SoakRun | None = None
    try:
        proc, warm = warm_up(bench, spec, probe, stream, opts, console)
        bursts = measure_ceiling(bench, spec, probe, proc, stream, warm.events, opts, console)
        backlog = ceiling_rate(bursts)
        skip = warm.events + opts.ceiling_reps * opts.ceiling_events
        paced = None
        if opts.paced_max_s > 0:
            paced = paced_ceiling(bench, spec, probe, proc, stream, skip, backlog, opts,
                                  console)
            skip += paced.sent
        rate = soak_rate(backlog, paced, opts)
        feed = PacedFeed(bench.bootstrap, topic, f"{bench.prefix}soak", rate, opts.seconds,
                         stream, skip)
        feed.prepare()
        reader = PredictionReader(bench.bootstrap, spec.output_topic, feed, opts.step_s,
                                  start=probe.ends.end(spec.output_topic))
        run = SoakRun(rate, [], feed, reader, warm, bursts, paced, backlog)
        try:
            wait_joined(probe, proc, bench.start_timeout)
            soak(run, proc, probe, opts, console)
        except RunFailed as exc:
            run.error = str(exc)
            console.print(f"[red]soak failed: {run.error}[/red]")
    finally:
        if run is not None:
            run.feed.halt.set()
        if proc is not None:
            proc.stop()
        if run is not None and run.reader.is_alive():
            run.reader.halt.set()
            run.reader.join(10)
        probe.close()
    assert run is not None  # else the failure raised
    return run


def run_soak(opts: SoakOptions, bootstrap: str | None, console: Console) -> dict[str, Any]:
    """Warm up, measure the maximum rate, soak at a fraction of it, write the report;
    return it."""
    with broker(bootstrap) as (address, configured):
        environment = machine.describe(address, configured)
        workdir = Path(tempfile.mkdtemp(prefix="streamlearn-soak-"))
        console.print(f"broker {address}, scratch {workdir}")
        probe = OffsetProbe(address)
        bench = Bench(address, workdir, probe)
        try:
            run = run_phases(bench, opts, console)
        finally:
            probe.close()
            remove_topics(bench, console)
            shutil.rmtree(workdir, ignore_errors=True)
    built = soak_report.build(run, environment, opts)
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
    parser.add_argument("--ceiling-events", type=int, default=60_000,
                        help="Events per maximum-rate burst on warm state (default 60,000).")
    parser.add_argument("--ceiling-reps", type=int, default=2,
                        help="Maximum-rate bursts; the median counts (default 2).")
    parser.add_argument("--paced-max", type=float, default=30.0,
                        help="Seconds of the maximum under the soak's feed and reader (fed "
                             "at 1.1x the backlog maximum); 0: soak at a fraction of the "
                             "backlog maximum instead (default 30).")
    parser.add_argument("--bootstrap", help="Use this broker instead of one of our own.")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Directory for the report.")
    parser.add_argument("--stem", default="soak", help="File name stem (default soak).")
    args = parser.parse_args(argv)
    if (args.minutes <= 0 or not 0 < args.fraction <= 1 or args.ceiling_reps < 1
            or args.paced_max < 0):
        parser.error("need --minutes > 0, 0 < --fraction <= 1, --ceiling-reps >= 1 and "
                     "--paced-max >= 0")
    opts = SoakOptions.for_duration(args.minutes * 60, fraction=args.fraction,
                                    ceiling_events=args.ceiling_events,
                                    ceiling_reps=args.ceiling_reps,
                                    paced_max_s=args.paced_max, out_dir=args.out,
                                    stem=args.stem)
    return (replace(opts, step_s=args.step) if args.step else opts), args.bootstrap


def main(argv: list[str] | None = None) -> int:
    opts, bootstrap = parse(argv)
    built = run_soak(opts, bootstrap, Console())
    return 0 if built["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
