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
from benchmarks.feature_memory import measure_apart
from benchmarks.kafka_io import OffsetProbe, topics_with_prefix
from benchmarks.options import Options
from benchmarks.phases import Input, latency_run, prepare_inputs, throughput_run
from benchmarks.profiling import profile_run
from benchmarks.runs import Bench, RunResult
from benchmarks.snapshot_cost import measure_snapshot
from benchmarks.stats import median
from benchmarks.workloads import Workload, groups, pipeline_of

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


def measure(
    result: RunResult, run: Callable[[RunResult], object], console: Console
) -> RunResult:
    try:
        run(result)
    except Exception as exc:  # a failed contender is reported, never hidden
        result.error = f"{type(exc).__name__}: {exc}"
    console.print(report.progress_line(result))
    return result


Plan = Sequence[tuple[Input, Sequence[Contender]]]


def throughput_phase(bench: Bench, plan: Plan, opts: Options, console: Console) -> list[RunResult]:
    """Interleaved rounds over every (input, contender) of ``plan``. A workload and its
    baseline swap places every round, so neither always runs first."""
    results = []
    for rep in range(opts.warmup_reps + opts.reps):
        for data, contenders in (plan if rep % 2 == 0 else plan[::-1]):
            for contender in contenders:
                result = RunResult(contender.key, data.workload, "throughput", rep,
                                   rep < opts.warmup_reps, events=len(data.events))
                run = functools.partial(throughput_run, bench, contender, data)
                results.append(measure(result, run, console))
    return results


def contenders_for(workload: Workload, keys: Sequence[str]) -> list[Contender]:
    """The contenders asked for (every one if none) that run ``workload``."""
    return [c for c in select(list(keys))
            if not workload.contenders or c.key in workload.contenders]


def latency_rate(results: Sequence[RunResult], opts: Options) -> float:
    """Half of A's median sustained events/s (the floor if A has no figure)."""
    rates = [r.events_per_s for r in results if r.contender == "A" and not r.warmup and r.ok]
    return max(opts.min_latency_rate, (median(rates) or 0.0) / 2)


LatencyRun = Callable[[Bench, Contender, str, tuple[int, int], float, RunResult], object]


def latency_phase(
    bench: Bench, contenders: Sequence[Contender], workload: str, rate: float, opts: Options,
    console: Console, runner: LatencyRun = latency_run,
) -> list[RunResult]:
    """Interleaved rounds of ``runner`` (``phases.latency_run`` or one wrapping it)."""
    sizes = (opts.latency_warmup, opts.latency_events)
    results = []
    for rep in range(opts.latency_reps):
        for contender in contenders:
            result = RunResult(contender.key, workload, "latency", rep, False,
                               events=opts.latency_warmup + opts.latency_events)
            result.extra["rate"] = rate
            run = functools.partial(runner, bench, contender, workload, sizes, rate)
            results.append(measure(result, run, console))
    return results


def run_group(
    bench: Bench, group: Sequence[Workload], opts: Options, console: Console
) -> tuple[list[RunResult], list[dict[str, Any]]]:
    """A workload, and its baseline if there is one: throughput rounds interleave the two."""
    names = " and ".join(w.key for w in group)
    console.rule(f"{names}: {opts.events} events, {opts.reps} reps + {opts.warmup_reps} warm-up")
    inputs = prepare_inputs(bench, group, opts.events)
    plan = [(data, contenders_for(w, opts.contenders)) for data, w in zip(inputs, group,
                                                                          strict=True)]
    results = throughput_phase(bench, plan, opts, console)
    for workload in group:
        if workload.key in opts.latency_workloads:
            mine = [r for r in results if r.workload == workload.key]
            rate = latency_rate(mine, opts)
            console.rule(f"{workload.key}: latency at {rate:,.0f} events/s (half of A's rate)")
            latency = contenders_for(workload, opts.latency_contenders)
            results += latency_phase(bench, latency, workload.key, rate, opts, console)
    profiles = []
    for data, workload in zip(inputs, group, strict=True):
        for contender in contenders_for(workload, opts.profile) if opts.profile else []:
            console.print(f"[{workload.key}] profiling {contender.key} with py-spy …")
            out = bench.workdir / f"profile-{contender.key}-{workload.key}.txt"
            profiles.append(profile_run(bench, contender, data, out))
    return results, profiles


def remove_topics(bench: Bench, console: Console) -> None:
    """Every topic of this run: ours, and whatever a contender made under its run's name
    (the worker creates its own state, model and dead-letter topics)."""
    from streamlearn.kafka.admin import delete_topics

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


def feature_phase(opts: Options, console: Console) -> list[dict[str, Any]]:
    """Memory and CPU of the derived features alone, for each workload that has some (in a
    process of its own, before any Kafka phase, like the snapshot figures)."""
    measured = []
    for workload in opts.workloads:
        if pipeline_of(workload).feature_set:
            console.print(f"[{workload}] feature state of {opts.feature_entities:,} entities "
                          "(tracemalloc) …")
            m = measure_apart(workload, opts.feature_entities,
                              opts.feature_events_per_entity, opts.events, opts.feature_reps)
            console.print(report.feature_line(m))
            measured.append(m)
    return measured


def run_benchmark(opts: Options, bootstrap: str | None, console: Console) -> dict[str, Any]:
    """Run everything ``opts`` asks for; write JSON and markdown; return the report."""
    snapshots = snapshot_phase(opts, console)
    features = feature_phase(opts, console)
    address, configured = broker(bootstrap)
    environment = machine.describe(address, configured)
    workdir = Path(tempfile.mkdtemp(prefix="streamlearn-bench-"))
    console.print(f"broker {address}, scratch {workdir}")
    probe = OffsetProbe(address)
    bench = Bench(address, workdir, probe)
    results: list[RunResult] = []
    profiles: list[dict[str, Any]] = []
    try:
        for group in groups(opts.workloads):
            runs, profiled = run_group(bench, group, opts, console)
            results += runs
            profiles += profiled
    finally:
        probe.close()
        remove_topics(bench, console)
    built = report.build(results, environment, opts, profiles, snapshots, features)
    paths = report.write(built, opts.out_dir, opts.stem)
    report.print_tables(built, console)
    console.print(f"written: {', '.join(str(p) for p in paths)}")
    return built
