"""Benchmark workload: HoeffdingAdaptiveTreeClassifier on Phishing-shaped events.

The harness passes the pre-produced input topic in ``BENCH_EVENTS_TOPIC``.
"""

from __future__ import annotations

import os

from river import tree

from streamlearn import Pipeline


def model() -> object:
    return tree.HoeffdingAdaptiveTreeClassifier(seed=42)


pipeline = Pipeline(
    name="bench-tree",
    key_field="event_id",
    event_id_field="event_id",
    label_field="is_phishing",
    model=model,
    events_topic=os.environ.get("BENCH_EVENTS_TOPIC", ""),
)
