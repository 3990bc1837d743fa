"""Benchmark workload: StandardScaler | LogisticRegression on Phishing-shaped events.

The harness passes the pre-produced input topic in ``BENCH_EVENTS_TOPIC``.
"""

from __future__ import annotations

import os

from river import linear_model, preprocessing

from streamlearn import Pipeline

FEATURES = {
    "empty_server_form_handler": "numeric",
    "popup_window": "numeric",
    "https": "numeric",
    "request_from_other_domain": "numeric",
    "anchor_from_other_domain": "numeric",
    "is_popular": "numeric",
    "long_url": "numeric",
    "age_of_domain": "numeric",
    "ip_in_url": "numeric",
}



def model() -> object:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


pipeline = Pipeline(
    name="bench-logreg",
    key_field="event_id",
    event_id_field="event_id",
    features=FEATURES,
    label_field="is_phishing",
    label_type="boolean",
    model=model,
    events_topic=os.environ.get("BENCH_EVENTS_TOPIC", ""),
)
