"""Metrics: batched histogram observations equal per-event ones; nothing exported early."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram

from streamlearn.monitoring.metrics import LATENCY_BUCKETS, create, observe_many


def samples(registry: CollectorRegistry) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for m in registry.collect() for s in m.samples if not s.name.endswith("_created")}


def test_observe_many_equals_observe_one_by_one():
    rng = random.Random(1)
    values = [rng.expovariate(50) for _ in range(2000)] + [0.0005, 0.001, 10.0, 99.0]
    one, many = CollectorRegistry(), CollectorRegistry()
    per_event = Histogram("lat_seconds", "", buckets=LATENCY_BUCKETS, registry=one)
    for v in values:
        per_event.observe(v)
    observe_many(Histogram("lat_seconds", "", buckets=LATENCY_BUCKETS, registry=many), values)
    assert samples(one) == samples(many)


def test_scores_appear_once_set_and_go_when_the_partition_leaves():
    registry = CollectorRegistry()
    bound = create(registry).bind("p", "m")
    labels = {"pipeline": "p", "model": "m", "metric": "accuracy", "partition": "3"}
    assert registry.get_sample_value("streamlearn_model_score", labels) is None
    bound.set_scores(3, 0.75, 0.5)
    assert registry.get_sample_value("streamlearn_model_score", labels) == 0.75
    bound.forget_partition(3)
    assert registry.get_sample_value("streamlearn_model_score", labels) is None
