"""Benchmark workload: HoeffdingAdaptiveTreeClassifier on Phishing-shaped events, with the
example pipeline's typed fields, on the input topic the harness passes in
``BENCH_EVENTS_TOPIC``."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from river import tree

from streamlearn.spec.pipeline import load_pipeline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "phishing.py"


def model() -> object:
    return tree.HoeffdingAdaptiveTreeClassifier(seed=42)


pipeline = replace(
    load_pipeline(EXAMPLE), name="bench-tree", model=model,
    events_topic=os.environ.get("BENCH_EVENTS_TOPIC", "bench-tree"),
)
