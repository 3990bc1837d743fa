"""Benchmark workload: the example pipeline (StandardScaler | LogisticRegression on
Phishing-shaped events), renamed, on the input topic the harness passes in
``BENCH_EVENTS_TOPIC``."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from streamlearn.spec.pipeline import load_pipeline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "phishing.py"

pipeline = replace(
    load_pipeline(EXAMPLE), name="bench-logreg",
    events_topic=os.environ.get("BENCH_EVENTS_TOPIC", "bench-logreg"),
)
