"""Benchmark workload: the example fraud pipeline (per-card windowed features, then
StandardScaler | LogisticRegression), renamed, on the input topic the harness passes in
``BENCH_EVENTS_TOPIC``."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from streamlearn.spec.pipeline import load_pipeline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud.py"

pipeline = replace(
    load_pipeline(EXAMPLE), name="bench-fraud",
    events_topic=os.environ.get("BENCH_EVENTS_TOPIC", "bench-fraud"),
)
