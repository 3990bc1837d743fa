"""The benchmark from start to end: broker, inputs, interleaved phases, report."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import machine, report
from benchmarks.contenders import Contender, select
from benchmarks.kafka_io import OffsetProbe, topics_with_prefix
from benchmarks.options import Options
from benchmarks.phases import Input, latency_run, prepare_input, throughput_run
from benchmarks.profiling import profile_run
from benchmarks.runs import Bench, RunResult
from benchmarks.snapshot_cost import measure_snapshot
from benchmarks.stats import median

__all__ = ["run_benchmark"]


def broker(bootstrap: str | None) -> tuple[str, str | None]:
    """(bootstrap, version of the local broker we started, if we did)."""
    if bootstrap:
        return bootstrap, None
    from streamlearn.broker import ensure_broker
    from streamlearn.config import load_settings

    settings = load_settings()
    configured = None if settings.uses_external_broker else settings.kafka_version
    return ensure_broker(settings), configured


def measure(result: RunResult, run: Callable[[RunResult], None], console: Console) -> RunResult:
    try:
        run(result)
    except Exception as exc:  # a failed contender is reported, never hidden
        result.error = f"{type(exc).__name__}: {exc}"
    console.print(report.progress_line(result))
    return result


def throughput_phase(
    bench: Bench, contenders: Sequence[Contender], data: Input, opts: Options, console: Console
) -> list[RunResult]:
    results = []
    for rep in range(opts.warmup_reps + opts.reps):
        for contender in contenders:
            result = RunResult(contender.key, data.workload, "throughput", rep,
                               rep < opts.warmup_reps, events=len(data.events))
            run = functools.partial(throughput_run, bench, contender, data)
            results.append(measure(result, run, console))
    return results


def latency_rate(results: Sequence[RunResult], opts: Options) -> float:
    """Half of A's median sustained events/s (the floor if A has no figure)."""
    rates = [r.events_per_s for r in results if r.contender == "A" and not r.warmup and r.ok]
    return max(opts.min_latency_rate, (median(rates) or 0.0) / 2)


def latency_phase(
    bench: Bench, contenders: Sequence[Contender], workload: str, rate: float, opts: Options,
    console: Console,
) -> list[RunResult]:
    sizes = (opts.latency_warmup, opts.latency_events)
    results = []
    for rep in range(opts.latency_reps):
        for contender in contenders:
            result = RunResult(contender.key, workload, "latency", rep, False,
                               events=opts.latency_warmup + opts.latency_events)
            result.extra["rate"] = rate
            run = functools.partial(latency_run, bench, contender, workload, sizes, rate)
            results.append(measure(result, run, console))
    return results


def run_workload(
    bench: Bench, workload: str, opts: Options, console: Console
) -> tuple[list[RunResult], list[dict[str, Any]]]:
    console.rule(f"{workload}: {opts.events} events, {opts.reps} reps + {opts.warmup_reps} warm-up")
    data = prepare_input(bench, workload, opts.events)
    contenders = select(list(opts.contenders))
    results = throughput_phase(bench, contenders, data, opts, console)
    if workload in opts.latency_workloads:
        rate = latency_rate(results, opts)
        console.rule(f"{workload}: latency at {rate:,.0f} events/s (half of A's rate)")
        latency = select(list(opts.latency_contenders))
        results += latency_phase(bench, latency, workload, rate, opts, console)
    profiles = []
    for contender in select(list(opts.profile)) if opts.profile else []:
        console.print(f"[{workload}] profiling {contender.key} with py-spy …")
        out = bench.workdir / f"profile-{contender.key}-{workload}.txt"
        profiles.append(profile_run(bench, contender, data, out))
    return results, profiles


def remove_topics(bench: Bench, console: Console) -> None:
    """Every topic of this run: ours, and whatever a contender made under its run's name
    (the worker creates its own state, model and dead-letter topics)."""
    from streamlearn.broker.admin import delete_topics

    try:
        names = {*bench.topics, *topics_with_prefix(bench.bootstrap, bench.prefix)}
        delete_topics(bench.bootstrap, sorted(names), timeout=60)
    except Exception as exc:  # leftovers cost disk space, not correctness
        console.print(f"[yellow]could not delete the benchmark's topics: {exc}[/yellow]")


def snapshot_phase(opts: Options, console: Console) -> list[dict[str, Any]]:
    # First, and in process: it needs no broker, and a broken snapshot API fails the run in
    # seconds instead of after every Kafka phase.
    measured = []
    for workload in opts.workloads:
        m = measure_snapshot(workload, opts.events, opts.snapshot_reps)
        console.print(report.snapshot_line(m))
        measured.append(m)
    return measured


def run_benchmark(opts: Options, bootstrap: str | None, console: Console) -> dict[str, Any]:
    """Run everything ``opts`` asks for; write JSON and markdown; return the report."""
    snapshots = snapshot_phase(opts, console)
    address, configured = broker(bootstrap)
    environment = machine.describe(address, configured)
    workdir = Path(tempfile.mkdtemp(prefix="streamlearn-bench-"))
    console.print(f"broker {address}, scratch {workdir}")
    probe = OffsetProbe(address)
    bench = Bench(address, workdir, probe)
    results: list[RunResult] = []
    profiles: list[dict[str, Any]] = []
    try:
        for workload in opts.workloads:
            runs, profiled = run_workload(bench, workload, opts, console)
            results += runs
            profiles += profiled
    finally:
        probe.close()
        remove_topics(bench, console)
    built = report.build(results, environment, opts, profiles, snapshots)
    paths = report.write(built, opts.out_dir, opts.stem)
    report.print_tables(built, console)
    console.print(f"written: {', '.join(str(p) for p in paths)}")
    return built
