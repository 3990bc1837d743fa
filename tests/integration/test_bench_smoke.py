"""The benchmark harness runs end to end in smoke mode (``make bench-smoke``), so it cannot rot.

Only counts are checked: every contender ran and answered every event exactly once (the
fraud pair: A and B, with and without derived features), and the snapshot cost and the
features' memory were measured; the processing-guarantees benchmark's smoke run did the same
for the worker under at-least-once and exactly-once (whose outputs carry transaction
markers). Timing figures of a smoke run mean nothing and are never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

# A last: the other contenders are checked first, so a failing worker cannot hide them.
THROUGHPUT_CONTENDERS = ("B", "C", "C2", "C3", "D", "E", "E3", "A")
LATENCY_CONTENDERS = ("E3", "E", "A")
WORKLOADS = ("logreg", "tree")
FRAUD_CONTENDERS = ("B", "A")
FRAUD_WORKLOADS = ("fraud", "fraud_raw")


def run_smoke(kafka: str, out: Path, module: str = "benchmarks", timeout: float = 300,
              args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, "--smoke", "--bootstrap", kafka, "--out", str(out),
         *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )


def runs_of(report: dict, workload: str, phase: str, contender: str) -> list[dict]:
    return [
        r for r in report["runs"]
        if (r["workload"], r["phase"], r["contender"]) == (workload, phase, contender)
    ]


def assert_every_event_answered(runs: list[dict], what: str) -> None:
    assert runs, f"{what}: no result"
    for run in runs:
        assert run["error"] is None, f"{what}: {run['error']}"
        assert run["outputs"] == run["events"] > 0, f"{what}: {run['outputs']}/{run['events']}"
        assert (run["missing"], run["duplicates"]) == (0, 0), f"{what}: {run}"


def test_smoke_benchmark_runs_every_contender(kafka: str, tmp_path: Path) -> None:
    done = run_smoke(kafka, tmp_path)
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert (tmp_path / "smoke.json").exists(), output

    report = json.loads((tmp_path / "smoke.json").read_text())
    for key in THROUGHPUT_CONTENDERS:
        for workload in WORKLOADS:
            runs = runs_of(report, workload, "throughput", key)
            assert_every_event_answered(runs, f"{workload} throughput {key}")
    for key in FRAUD_CONTENDERS:
        for workload in FRAUD_WORKLOADS:
            runs = runs_of(report, workload, "throughput", key)
            assert_every_event_answered(runs, f"{workload} throughput {key}")
    for key in LATENCY_CONTENDERS:
        runs = runs_of(report, "logreg", "latency", key)
        assert_every_event_answered(runs, f"logreg latency {key}")
        assert all(r["p99_ms"] is not None for r in runs)
    assert done.returncode == 0, output

    snapshots = {s["workload"]: s for s in report["snapshots"]}
    assert set(snapshots) == {*WORKLOADS, *FRAUD_WORKLOADS}
    for s in snapshots.values():
        assert s["bytes"] > 0 and s["chunks"] >= 1 and s["build_ms"] > 0, s

    [features] = report["features"]
    assert features["workload"] == "fraud" and features["entities"] == 2_000, features
    assert features["checkpoint_records"] == 2_001, features
    assert features["bytes_per_entity"] > 0 and features["checkpoint_bytes"] > 0, features
    assert features["us_per_event"] > 0, features
    baseline = report["summary"]["fraud"]["baseline"]
    assert baseline["workload"] == "fraud_raw"
    assert [r["contender"] for r in baseline["rows"]] == ["A", "B"]

    table = (tmp_path / "smoke.md").read_text()
    for key in THROUGHPUT_CONTENDERS:
        assert f"| {key} |" in table
    assert "events/s A/C2 (aiokafka)" in table
    assert "events/s A/C3 (confluent-kafka)" in table
    assert "p99 latency A/E3 (confluent-kafka forward)" in table
    assert "## Snapshot cost" in table
    assert "### fraud with derived features against fraud_raw without" in table
    assert "## Derived features alone" in table

    check_guarantees_smoke(kafka, tmp_path / "guarantees")


def check_guarantees_smoke(kafka: str, out: Path) -> None:
    """``python -m benchmarks.guarantees --smoke`` on logreg (the tree adds nothing a smoke
    run checks; the full benchmark runs both): both modes answer every event."""
    done = run_smoke(kafka, out, "benchmarks.guarantees", timeout=120,
                     args=("--workloads", "logreg"))
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert (out / "guarantees-smoke.json").exists(), output
    report = json.loads((out / "guarantees-smoke.json").read_text())
    for mode in ("ALO", "EOS"):
        for workload in ("logreg",):
            runs = runs_of(report, workload, "throughput", mode)
            assert_every_event_answered(runs, f"guarantees {workload} throughput {mode}")
            markers = [r["extra"]["marker_offsets"] for r in runs]
            assert all(m > 0 for m in markers) if mode == "EOS" else markers == [0], markers
        runs = runs_of(report, "logreg", "latency", mode)
        assert_every_event_answered(runs, f"guarantees logreg latency {mode}")
        assert all(r["p99_ms"] is not None and r["extra"]["append_p99_ms"] is not None
                   for r in runs)
    assert done.returncode == 0, output
    # A smoke run's figures decide nothing (its throughput ratio may be missing): the
    # verdict is only checked to be written.
    assert report["verdict"]["qualifies"] in (True, False, None), report["verdict"]
    assert "**Verdict: " in (out / "guarantees-smoke.md").read_text()
