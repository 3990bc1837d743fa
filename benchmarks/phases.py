"""The two measurement phases: sustained throughput on a backlog, latency at a paced rate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.contenders import Contender
from benchmarks.kafka_io import produce_all, produce_paced
from benchmarks.runs import Bench, RunFailed, RunResult, Window, parse_result_line
from benchmarks.stats import percentile
from benchmarks.workloads import Event, Workload, event_ids, make_events, model_rows

__all__ = ["Input", "latency_run", "prepare_inputs", "throughput_run"]

Progress = Callable[[RunResult], None]


@dataclass(frozen=True)
class Input:
    """The pre-produced input of one workload."""

    workload: str
    topic: str
    events: Sequence[Event]
    events_file: Path
    """What the model sees per event, one JSON a line (contender B's input)."""
    ids: frozenset[bytes]
    """The event ids the outputs must carry, one output each."""


def prepare_inputs(bench: Bench, group: Sequence[Workload], n: int) -> list[Input]:
    """One topic per source, produced once: workloads of the same source read the same one."""
    topics: dict[str, tuple[str, list[Event]]] = {}
    inputs = []
    for workload in group:
        if workload.source not in topics:
            topic = f"{bench.prefix}{workload.key}.events"
            events = make_events(n, f"{bench.run_id}-{workload.key}", workload.source)
            bench.create_topic(topic)
            produce_all(bench.bootstrap, topic, events)
            topics[workload.source] = (topic, events)
        topic, events = topics[workload.source]
        events_file = bench.workdir / f"{workload.key}.jsonl"
        events_file.write_bytes(b"\n".join(model_rows(workload.key, events)) + b"\n")
        inputs.append(Input(workload.key, topic, events, events_file,
                            event_ids(workload.key, events)))
    return inputs


def throughput_run(bench: Bench, contender: Contender, data: Input, result: RunResult) -> None:
    """Run ``contender`` over the whole backlog of ``data``; fills in ``result``."""
    run = bench.spec(data.workload, data.topic, data.events_file)
    proc = bench.start(contender, run)
    window = Window()
    try:
        if contender.uses_kafka:
            bench.watch(proc, run.output_topic, len(data.events), window)
        elif proc.wait(bench.start_timeout + bench.stall_timeout) is None:
            raise RunFailed(f"did not finish:\n{proc.log_tail()}")
    finally:
        end = proc.stop()
    result.peak_rss_mb = end.peak_rss_mb
    if not contender.uses_kafka:
        _local_result(result, run.state_dir / "contender.log", end.returncode, end.cpu_s)
        return
    bench.collect(result, run, data.ids)
    result.cpu_us_per_event = window.cpu_us_per_event()


def _local_result(result: RunResult, log: Path, returncode: int, cpu_s: float) -> None:
    if returncode != 0:
        raise RunFailed(f"exit code {returncode}: {log.read_text(errors='replace')[-800:]}")
    line = parse_result_line(log)
    result.outputs = int(line["outputs"])
    result.missing = max(0, result.events - result.outputs)
    result.events_per_s = float(line["events_per_s"])
    result.cpu_us_per_event = line["seconds"] / result.events * 1e6
    result.extra["model_events_per_s"] = float(line["model_events_per_s"])


def latency_run(
    bench: Bench, contender: Contender, workload: str, sizes: tuple[int, int], rate: float,
    result: RunResult,
) -> dict[bytes, int]:
    """Warm the contender up live, then send ``sizes[1]`` events at ``rate``; p50/p99.
    Returns the send time (CreateTime, ms) of each measured event by id."""
    warm_n, n = sizes
    topic = f"{bench.prefix}lat-{result.contender}-{result.rep}-{workload}.events"
    bench.create_topic(topic)
    events = make_events(warm_n + n, prefix=f"{topic}")
    run = bench.spec(workload, topic, Path("/dev/null"))
    proc = bench.start(contender, run)
    try:
        produce_paced(bench.bootstrap, topic, events[:warm_n], rate)
        bench.watch(proc, run.output_topic, warm_n, Window())
        window = Window(cpu_start=proc.cpu_seconds(), count_start=warm_n)
        sent = produce_paced(bench.bootstrap, topic, events[warm_n:], rate)
        bench.watch(proc, run.output_topic, warm_n + n, window)
    finally:
        end = proc.stop()
    result.peak_rss_mb = end.peak_rss_mb
    result.cpu_us_per_event = window.cpu_us_per_event()
    records = bench.collect(result, run, {key for key, _ in events})
    result.events_per_s = None  # paced: the rate is the harness's, not the contender's
    latencies = [ts - sent[eid] for eid, ts in records if eid in sent]
    if latencies:
        result.p50_ms = percentile(latencies, 50)
        result.p99_ms = percentile(latencies, 99)
    return sent
