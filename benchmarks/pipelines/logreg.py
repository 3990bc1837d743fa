"""Benchmark workload: StandardScaler | LogisticRegression on Phishing-shaped events.

The harness passes the pre-produced input topic in ``BENCH_EVENTS_TOPIC``.
"""

from __future__ import annotations

import os

from river import linear_model, preprocessing

from streamlearn import Pipeline


def model() -> object:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


pipeline = Pipeline(
    name="bench-logreg",
    key_field="event_id",
    event_id_field="event_id",
    label_field="is_phishing",
    model=model,
    events_topic=os.environ.get("BENCH_EVENTS_TOPIC", ""),
)
