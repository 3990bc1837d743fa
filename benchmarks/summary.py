"""Medians per contender, ratios of medians, and the targets, per workload; a workload with
a baseline (fraud: fraud_raw, the same model without derived features) also gets the ratios
of its medians to the baseline's, contender by contender.

Targets (ratios of medians; A's latency is measured at half of A's own median rate):
A/C2 and A/D >= 1 (the aiokafka loop and Quix Streams), A/C3 >= 0.8 (the confluent-kafka
loop, A's own client), A/B >= 0.6 for logreg and >= 0.8 for the tree (the model alone), and
A's p50 and p99 at most twice those of E3, the confluent-kafka forward loop: the floor of
the client A uses. A/C (kafka-python) and A/E (aiokafka forward) are shown without target.

The fraud pair runs A and B only and has no target: its A/B is shown, and its cost against
the baseline (events/s and events/s per core, with features / without).

Latencies are whole milliseconds (record timestamps): a floor below 1 ms counts as 1 ms in
a ratio, so an E3 p50 that rounds to 0 asks A for <= 2 ms instead of making the ratio void.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.contenders import CONTENDERS
from benchmarks.runs import RunResult
from benchmarks.stats import median, ratio
from benchmarks.workloads import WORKLOADS

__all__ = ["TITLES", "against_baseline", "per_contender", "summarize"]

TITLES = {c.key: c.title for c in CONTENDERS}
MODEL_CEILING_TARGET = {"logreg": 0.6, "tree": 0.8}
RESOLUTION_MS = 1.0


def per_contender(runs: Sequence[RunResult]) -> dict[str, dict[str, Any]]:
    keys = list(dict.fromkeys(r.contender for r in runs))
    table = {}
    for key in keys:
        mine = [r for r in runs if r.contender == key and not r.warmup]
        good = [r for r in mine if r.ok]
        table[key] = {
            "title": TITLES.get(key, key),
            "runs": len(mine),
            "ok_runs": len(good),
            "events_per_s": median(r.events_per_s for r in good),
            "cpu_us_per_event": median(r.cpu_us_per_event for r in good),
            "events_per_s_per_core": median(_per_core(r.cpu_us_per_event) for r in good),
            "peak_rss_mb": max((r.peak_rss_mb for r in mine if r.peak_rss_mb), default=None),
            "p50_ms": median(r.p50_ms for r in good),
            "p99_ms": median(r.p99_ms for r in good),
            "model_events_per_s": median(r.extra.get("model_events_per_s") for r in good),
            "rate": median(r.extra.get("rate") for r in mine),
            "failures": [_failure(r) for r in mine if not r.ok],
        }
    return table


def _per_core(cpu_us_per_event: float | None) -> float | None:
    """Events one core would take per second at this CPU cost (all the process's threads)."""
    return 1e6 / cpu_us_per_event if cpu_us_per_event else None


def _failure(r: RunResult) -> str:
    if r.error:
        return f"rep {r.rep}: {r.error}"
    return (
        f"rep {r.rep}: {r.outputs} outputs for {r.events} events "
        f"({r.missing} missing, {r.duplicates} duplicate or unexpected)"
    )


def _targets(workload: str, tp: dict[str, Any], lat: dict[str, Any]) -> list[dict[str, Any]]:
    def rate(key: str) -> float | None:
        return tp.get(key, {}).get("events_per_s")

    def lat_of(key: str, field: str) -> float | None:
        return lat.get(key, {}).get(field)

    def lat_ratio(field: str, floor: str) -> float | None:
        base = lat_of(floor, field)
        return ratio(lat_of("A", field), None if base is None else max(base, RESOLUTION_MS))

    ceiling = MODEL_CEILING_TARGET.get(workload)
    # (name, the contender A is compared with, ratio, target operator, target)
    rows = [
        ("events/s A/B (model alone)", "B", ratio(rate("A"), rate("B")),
         ">=" if ceiling else None, ceiling),
        ("events/s A/C (kafka-python)", "C", ratio(rate("A"), rate("C")), None, None),
        ("events/s A/C2 (aiokafka)", "C2", ratio(rate("A"), rate("C2")), ">=", 1.0),
        ("events/s A/C3 (confluent-kafka)", "C3", ratio(rate("A"), rate("C3")), ">=", 0.8),
        ("events/s A/D (Quix Streams)", "D", ratio(rate("A"), rate("D")), ">=", 1.0),
        ("p50 latency A/E3 (confluent-kafka forward)", "E3", lat_ratio("p50_ms", "E3"), "<=",
         2.0),
        ("p99 latency A/E3 (confluent-kafka forward)", "E3", lat_ratio("p99_ms", "E3"), "<=",
         2.0),
        ("p50 latency A/E (aiokafka forward)", "E", lat_ratio("p50_ms", "E"), None, None),
        ("p99 latency A/E (aiokafka forward)", "E", lat_ratio("p99_ms", "E"), None, None),
    ]
    # A workload run by some contenders only (fraud: A and B) shows the ratios it can have.
    allowed = WORKLOADS[workload].contenders if workload in WORKLOADS else ()
    return [
        {"name": name, "value": value, "target": f"{op} {limit:g}" if op else "",
         "met": _met(value, op, limit)}
        for name, other, value, op, limit in rows
        if not allowed or other in allowed
    ]


def _met(value: float | None, op: str | None, limit: float | None) -> bool | None:
    if value is None or op is None or limit is None:
        return None
    return value >= limit if op == ">=" else value <= limit


BASELINE_FIGURES = ("events_per_s", "events_per_s_per_core", "cpu_us_per_event")


def against_baseline(tp: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    """Per contender run on both: each figure with, without, and the ratio of the medians.

    >>> with_ = {"A": {"title": "a", "events_per_s": 800.0, "events_per_s_per_core": 1000.0,
    ...                "cpu_us_per_event": 1000.0}}
    >>> without = {"A": {"events_per_s": 1000.0, "events_per_s_per_core": 1250.0,
    ...                  "cpu_us_per_event": 800.0}, "B": {}}
    >>> row = against_baseline(with_, without)[0]
    >>> row["events_per_s_ratio"], row["events_per_s_per_core_ratio"], row["cpu_us_per_event"]
    (0.8, 0.8, [1000.0, 800.0])
    """
    rows = []
    for key in [k for k in tp if k in base]:
        row: dict[str, Any] = {"contender": key, "title": tp[key]["title"]}
        for figure in BASELINE_FIGURES:
            pair = [tp[key].get(figure), base[key].get(figure)]
            row[figure] = pair
            row[f"{figure}_ratio"] = ratio(*pair)
        rows.append(row)
    return rows


def summarize(results: Sequence[RunResult], workloads: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for workload in workloads:
        mine = [r for r in results if r.workload == workload]
        tp = per_contender([r for r in mine if r.phase == "throughput"])
        lat = per_contender([r for r in mine if r.phase == "latency"])
        out[workload] = {"throughput": tp, "latency": lat, "targets": _targets(workload, tp, lat)}
    for workload, summary in out.items():
        baseline = WORKLOADS[workload].baseline if workload in WORKLOADS else None
        if baseline in out:
            rows = against_baseline(summary["throughput"], out[baseline]["throughput"])
            summary["baseline"] = {"workload": baseline, "rows": rows}
    return out
