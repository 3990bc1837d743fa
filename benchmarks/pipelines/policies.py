"""Benchmark workload: the drift-policy evidence's candidates in a worker.

``BENCH_STREAM`` (sea, agrawal, fraud) picks the fields and the candidates of
``benchmarks.drift_policies`` (``tree`` the champion, ``lr``); ``BENCH_POLICY`` is ``single``
(the champion alone) or a policy's name. Labels come on ``<name>.labels``: one global learner.
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks.drift_policies import factories
from streamlearn import Pipeline

STREAM = os.environ.get("BENCH_STREAM", "fraud")
POLICY = os.environ.get("BENCH_POLICY", "single")

FIELDS = {
    "sea": dict.fromkeys(("0", "1", "2"), "numeric"),
    "agrawal": dict.fromkeys(("salary", "commission", "age", "elevel", "car", "zipcode",
                              "hvalue", "hyears", "loan"), "numeric"),
    "fraud": {"amount": "numeric", "merchant": "categorical"},
}

make = factories(STREAM)
models: dict[str, Any] = (
    {"model": make["tree"]} if POLICY == "single"
    else {"models": make, "champion": "tree", "drift_policy": POLICY})

pipeline = Pipeline(
    name=f"bench-{STREAM}-{POLICY}",
    key_field="event_id",
    event_id_field="event_id",
    time_field="time",
    features=FIELDS[STREAM],
    label_type="boolean",
    label_ttl="1h",
    **models,
)
