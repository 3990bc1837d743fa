"""The report: JSON with every run, a markdown table, a rich table, progress lines."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from benchmarks.options import Options
from benchmarks.runs import RunResult
from benchmarks.summary import summarize
from benchmarks.workloads import WORKLOADS

__all__ = [
    "build", "feature_line", "markdown", "print_tables", "progress_line", "snapshot_line", "write",
]

COLUMNS = ("contender", "what", "events/s", "CPU µs/event", "p50 ms", "p99 ms",
           "CPU µs/event paced", "peak RSS MB", "runs ok")
DEFINITIONS = (
    "events/s: outputs stamped after the first output's timestamp / (last - first output "
    "timestamp) on a pre-produced backlog: start-up and the first batch excluded, so batch "
    "size earns no free work (B: its own loop timer). Output topics use LogAppendTime, so a "
    "prediction's timestamp is its arrival at the broker whatever client sent it. "
    "CPU µs/event: user + system CPU of the contender process (all threads) between its "
    "first and last output, per event; 'paced' is the same during the latency phase. "
    "Latency: output timestamp - input CreateTime (set at send by the paced producer), "
    "matched by event_id, 1 ms resolution (in latency ratios a floor below 1 ms counts as "
    "1 ms). Peak RSS: VmHWM of the contender process. "
    "Delivery, the same for every Kafka contender: at-least-once, the input offsets of a "
    "batch are committed only after the broker acked all its outputs (acks=all); Quix "
    "Streams' checkpoint does the same (producer flush, then commit)."
)


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def progress_line(r: RunResult) -> str:
    tag = "warm-up" if r.warmup else f"rep {r.rep}"
    head = f"[{r.workload}] {r.phase:<10} {tag:<8} {r.contender:<11}"
    if r.error:
        return f"{head} [red]FAILED[/red] {r.error.splitlines()[0][:120]}"
    figures = (
        f"p50 {_num(r.p50_ms, 1)} ms  p99 {_num(r.p99_ms, 1)} ms"
        if r.phase == "latency" else f"{_num(r.events_per_s):>8} ev/s"
    )
    status = "ok" if r.ok else f"[red]{r.missing} missing, {r.duplicates} dup[/red]"
    return (
        f"{head} {figures}  {_num(r.cpu_us_per_event):>5} µs/ev  "
        f"{_num(r.peak_rss_mb):>4} MB  {r.outputs}/{r.events} {status}"
    )


def snapshot_line(m: dict[str, Any]) -> str:
    return (
        f"[{m['workload']}] snapshot  after {m['examples']:,} examples: "
        f"{_num(m['build_ms'], 2)} ms, {m['bytes']:,} bytes, {m['chunks']} chunk(s)"
    )


def feature_line(m: dict[str, Any]) -> str:
    return (
        f"[{m['workload']}] features  {m['entities']:,} entities: "
        f"{_num(m['mib_per_100k'], 1)} MiB heap and {_num(m['checkpoint_mib_per_100k'], 1)} MiB "
        f"checkpoint per 100k, {_num(m['us_per_event'], 1)} µs/event"
    )


def build(
    results: Sequence[RunResult], environment: dict[str, Any], opts: Options,
    profiles: Sequence[dict[str, Any]], snapshots: Sequence[dict[str, Any]] = (),
    features: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    options = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(opts).items()}
    return {
        **environment,
        "options": options,
        "summary": summarize(results, opts.workloads),
        "profiles": list(profiles),
        "snapshots": list(snapshots),
        "features": list(features),
        "runs": [r.to_dict() for r in results],
    }


def _rows(summary: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per contender: throughput figures, then latency figures if it had some."""
    tp, lat = summary["throughput"], summary["latency"]
    rows: list[tuple[str, ...]] = []
    for key in dict.fromkeys([*tp, *lat]):
        t, la = tp.get(key, {}), lat.get(key, {})
        cpu = t.get("cpu_us_per_event")
        ok = [f"{s['ok_runs']}/{s['runs']}" for s in (t, la) if s]
        rows.append((
            key, (t or la)["title"], _num(t.get("events_per_s")), _num(cpu),
            _num(la.get("p50_ms"), 1), _num(la.get("p99_ms"), 1),
            _num(la.get("cpu_us_per_event")),
            _num(max(filter(None, [t.get("peak_rss_mb"), la.get("peak_rss_mb")]), default=None)),
            " + ".join(ok),
        ))
    return rows


def _target_rows(summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    met = {True: "yes", False: "**no**", None: "-"}
    return [(t["name"], _num(t["value"], 2), t["target"], met[t["met"]])
            for t in summary["targets"]]


def _header(built: dict[str, Any]) -> list[str]:
    m, v, o = built["machine"], built["versions"], built["options"]
    return [
        f"# streamlearn benchmark, {built['date']}",
        "",
        f"Machine: {m['nproc']} CPUs, {m['cpu']}, {m['platform']}, load at start "
        f"{m['load_avg_at_start']}.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Throughput: {o['events']} pre-produced events per run, medians of {o['reps']} "
        f"interleaved repetitions after {o['warmup_reps']} discarded; latency: "
        f"{o['latency_events']} paced events after {o['latency_warmup']} warm-up ones, "
        f"medians of {o['latency_reps']} repetitions. One partition, one broker.",
        "",
        DEFINITIONS,
        "",
    ]


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(built: dict[str, Any]) -> str:
    lines = _header(built)
    for workload, summary in built["summary"].items():
        rate = summary["latency"].get("A", {}).get("rate")
        lines += [f"## {workload}: {WORKLOADS[workload].title}", ""]
        lines += _table(COLUMNS, _rows(summary))
        lines += ["", *([f"Latency at {_num(rate)} events/s (half of A's median).", ""]
                        if rate is not None else [])]
        lines += _table(("ratio of medians", "value", "target", "met"), _target_rows(summary))
        failures = [f"- {k}: {f}" for k, s in [*summary["throughput"].items(),
                                                *summary["latency"].items()]
                    for f in s["failures"]]
        lines += ["", *(["Failures:", *failures, ""] if failures else [])]
        lines += _baseline_lines(workload, summary.get("baseline"))
    lines += _snapshot_lines(built.get("snapshots", []))
    lines += _feature_lines(built.get("features", []))
    for p in built["profiles"]:
        lines += _profile_lines(p)
    return "\n".join(lines) + "\n"


SNAPSHOT_COLUMNS = ("workload", "examples learned", "build ms (median)", "bytes", "chunks",
                    "µs/event amortized")


def _snapshot_rows(snapshots: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (m["workload"], f"{m['examples']:,}", _num(m["build_ms"], 2), f"{m['bytes']:,}",
         str(m["chunks"]), _num(m["us_per_event"], 3))
        for m in snapshots
    ]


def _snapshot_lines(snapshots: Sequence[dict[str, Any]]) -> list[str]:
    if not snapshots:
        return []
    m = snapshots[0]
    return [
        "## Snapshot cost (in process, no Kafka)",
        "",
        f"`build_snapshot` (pickle, {m['chunk_bytes'] // 1024} KiB chunks, sha256, HMAC "
        f"signature) of the workload's model after learning the run's events, median of "
        f"{m['reps']}. How often, from the worker's defaults: every {m['every_examples']:,} "
        f"examples or {m['every_s']:g} s (STREAMLEARN_SNAPSHOT_EVERY / "
        f"STREAMLEARN_SNAPSHOT_INTERVAL), so per event: build ms / {m['every_examples']:,}. "
        "A build on the hot path also holds up its batch for the whole build.",
        "",
        *_table(SNAPSHOT_COLUMNS, _snapshot_rows(snapshots)),
        "",
    ]


BASELINE_COLUMNS = ("contender", "events/s with", "without", "ratio",
                    "per core with", "without", "ratio", "CPU µs/ev with", "without")


def _baseline_rows(baseline: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in baseline["rows"]:
        (rate, base_rate), (core, base_core), (cpu, base_cpu) = (
            r["events_per_s"], r["events_per_s_per_core"], r["cpu_us_per_event"])
        rows.append((
            r["contender"], _num(rate), _num(base_rate), _num(r["events_per_s_ratio"], 2),
            _num(core), _num(base_core), _num(r["events_per_s_per_core_ratio"], 2),
            _num(cpu, 1), _num(base_cpu, 1),
        ))
    return rows


def _baseline_lines(workload: str, baseline: dict[str, Any] | None) -> list[str]:
    if not baseline:
        return []
    return [
        f"### {workload} with derived features against {baseline['workload']} without",
        "",
        "The same input topic; the two workloads' runs interleave (and swap places each "
        "round). Ratios of medians, with / without. events/s per core: 10^6 / CPU µs per "
        "event, the events one "
        "busy core takes per second at the measured CPU cost (the worker process's user + "
        "system CPU, all threads, between its first and last output; B: its loop time, with "
        "the features computed beforehand by the offline twin, so B's ratio is the cost of a "
        "wider model input alone).",
        "",
        *_table(BASELINE_COLUMNS, _baseline_rows(baseline)),
        "",
    ]


FEATURE_COLUMNS = ("workload", "entities", "events each", "heap MiB /100k", "bytes /entity",
                   "pre-ckpt MiB /100k", "ckpt MiB /100k", "next ckpt MiB /100k", "µs/event")


def _feature_rows(features: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (m["workload"], f"{m['entities']:,}", str(m["events_per_entity"]),
         _num(m["mib_per_100k"], 1), _num(m["bytes_per_entity"]),
         _num(m["mib_per_100k_before_checkpoint"], 1), _num(m["checkpoint_mib_per_100k"], 1),
         _num(m["next_checkpoint_mib_per_100k"], 1), _num(m["us_per_event"], 2))
        for m in features
    ]


def _feature_lines(features: Sequence[dict[str, Any]]) -> list[str]:
    if not features:
        return []
    m = features[0]
    return [
        "## Derived features alone (in process, no Kafka)",
        "",
        f"Memory: one partition's feature state (`spec.feature_set.partition(0)`, "
        f"{m['features']} features) fed {m['events_per_entity']} events for each of "
        f"{m['entities']:,} distinct cards, all within the shortest window, so every event is "
        "held. Heap: Python heap growth (tracemalloc) after a checkpoint, the state alone; "
        "pre-ckpt: before it, with the change log kept until then. Ckpt: key + value bytes "
        "of `checkpoint_records` (entities and meta) for them; next ckpt: after one more "
        "event per entity, when each record also carries the entity's previous value. "
        "µs/event: "
        f"`PartitionFeatures.values` alone over {m['stream_events']:,} events of the fraud "
        f"stream ({m['stream_entities']:,} cards), median of {m['reps']} passes.",
        "",
        *_table(FEATURE_COLUMNS, _feature_rows(features)),
        "",
    ]


def _profile_lines(p: dict[str, Any]) -> list[str]:
    if "error" in p:
        return [f"Profile: {p['error']}", ""]
    rows = [(name, f"{c['share']:.1%}", _num(c["us_per_event"]))
            for name, c in p["categories"].items()]
    head = (
        f"## Where {p['contender']}'s CPU goes ({p['workload']}, py-spy, {p['samples']} "
        f"samples, {_num(p['cpu_us_per_event'])} µs/event)"
    )
    return [head, "", *_table(("library (innermost frame)", "share", "µs/event"), rows), ""]


def write(built: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_bytes(orjson.dumps(built, option=orjson.OPT_INDENT_2))
    md_path.write_text(markdown(built))
    return [json_path, md_path]


def print_tables(built: dict[str, Any], console: Console) -> None:
    for workload, summary in built["summary"].items():
        # The 'what' column stays in the markdown: an 80-column terminal has no room for it.
        table = Table(COLUMNS[0], *COLUMNS[2:], title=f"{workload}: {WORKLOADS[workload].title}")
        for row in _rows(summary):
            table.add_row(row[0], *row[2:])
        console.print(table)
        targets = Table("ratio of medians", "value", "target", "met")
        for row in _target_rows(summary):
            targets.add_row(*(cell.replace("**", "") for cell in row))
        console.print(targets)
        baseline = summary.get("baseline")
        if baseline:
            _print_table(console, BASELINE_COLUMNS, _baseline_rows(baseline),
                         f"{workload} / {baseline['workload']} (with / without features)")
    if built.get("snapshots"):
        _print_table(console, SNAPSHOT_COLUMNS, _snapshot_rows(built["snapshots"]),
                     "snapshot cost (in process)")
    if built.get("features"):
        _print_table(console, FEATURE_COLUMNS, _feature_rows(built["features"]),
                     "derived features alone (in process)")


def _print_table(console: Console, head: Sequence[str], rows: Sequence[Sequence[str]],
                 title: str) -> None:
    table = Table(*head, title=title)
    for row in rows:
        table.add_row(*row)
    console.print(table)
