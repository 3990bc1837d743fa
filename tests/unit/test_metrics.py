"""Metrics: the catalog is what is exported; batched histograms equal per-event ones;
nothing exported early; nothing outside monitoring/ binds children."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streamlearn.models.scoring import Scoring
from streamlearn.monitoring.batch_histogram import BatchHistogram
from streamlearn.monitoring.catalog import CATALOG, LATENCY_BUCKETS
from streamlearn.monitoring.metrics import MetricChoice, PipelineMetrics, create

SRC = Path(__file__).resolve().parents[2] / "src" / "streamlearn"


def samples(registry: CollectorRegistry) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for m in registry.collect() for s in m.samples if not s.name.endswith("_created")}


@dataclass
class Features:
    """What ``PartitionMetrics.count_features`` reads of a partition's feature state."""

    partition: int
    entities: dict = field(default_factory=lambda: {"a": 1, "b": 2})

    def take_counts(self) -> tuple[int, int, int]:
        return (1, 2, 3)


SCORER = Scoring.of(["accuracy"]).new()
SCORER.update(True, True, None)
CHOICE = MetricChoice(threshold=0.6)


def exercise(bound: PipelineMetrics) -> None:
    """Every view of one pipeline, every method once: each catalog metric gets a sample."""
    p = bound.partitions
    p.events.inc(3)
    p.predictions.inc(2)
    p.dead_letters["bad_type"].inc()
    p.undeclared_fields.inc()
    p.examples_learned.inc(2)
    p.latency.observe_batch([0.001, 0.2])
    p.batch_size.observe(3)
    p.count_features(Features(0), "user")
    bound.scores.set(0, SCORER)
    bound.drift.count("data", "ADWIN", "amount", "drift")
    bound.drift.set_estimate("data", "ADWIN", "amount", 0, 1.5)
    bound.drift.set_stability("data", "amount", 0, 0.3)
    bound.snapshots.wrote(0.01, 2048)
    bound.snapshots.refuse("bad_digest")
    bound.snapshots.restores.inc()
    bound.snapshots.entities_lost.inc(4)
    broker = bound.broker()
    broker.changed(False, 0.0)
    broker.changed(True, 7.0)
    broker.set_lag("p.events", 0, 12)
    broker.input_idle("p.events")
    join = bound.join(0, "p.served")
    join.outcomes["joined"].inc()
    join.totals["joined"].set(1)
    join.pending.set(2)
    join.waiting.set(3)
    join.late.inc()
    join.delay.observe_batch([30.0])
    learner = bound.learner("p.training")
    learner.active.set(1)
    learner.generation.set(2)
    learner.examples.set(5)
    learner.duplicates.inc()
    learner.merged(waiting=4, late=1)
    learner.set_candidate_scores("b", SCORER)
    learner.count_action("promote")
    learner.refuse_command("replayed")
    serving = bound.serving()
    serving.examples.set(5)
    serving.staleness.set(1)
    serving.load_seconds.observe(0.02)


def test_the_exposition_names_each_catalog_metric_once_with_its_type_help_and_labels():
    registry = CollectorRegistry()
    exercise(create(registry).bind("p", "m", CHOICE))
    text = generate_latest(registry).decode()
    for metric in CATALOG:
        name = "streamlearn_" + metric.name + ("_total" if metric.type == "counter" else "")
        assert text.count(f"# TYPE {name} {metric.type}\n") == 1, name
        assert text.count(f"# HELP {name} {metric.help}\n") == 1, name
        assert re.search(rf"^{name}(_bucket)?{{", text, re.MULTILINE), f"{name}: no sample"
    assert len({m.name for m in CATALOG}) == len(CATALOG)
    labels = {m.name: set(m.labels) for m in CATALOG}
    for family in registry.collect():
        short = family.name.removeprefix("streamlearn_")
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == labels[short], sample


def test_views_export_what_they_were_given():
    registry = CollectorRegistry()
    exercise(create(registry).bind("p", "m", CHOICE))
    get = registry.get_sample_value
    assert get("streamlearn_events_total", {"pipeline": "p"}) == 3
    assert get("streamlearn_feature_entities",
               {"pipeline": "p", "entity": "user", "partition": "0"}) == 2
    assert get("streamlearn_entity_events_dropped_total", {"pipeline": "p"}) == 3
    assert get("streamlearn_snapshot_bytes", {"pipeline": "p"}) == 2048
    assert get("streamlearn_broker_up", {"pipeline": "p"}) == 1
    assert get("streamlearn_broker_outage_seconds_total", {"pipeline": "p"}) == 7
    assert get("streamlearn_consumer_lag",
               {"pipeline": "p", "topic": "p.events", "partition": "0"}) == 12
    assert get("streamlearn_merge_waiting",
               {"pipeline": "p", "topic": "p.training", "partition": "0"}) == 4
    assert get("streamlearn_candidate_score",
               {"pipeline": "p", "candidate": "b", "metric": "rolling_accuracy"}) == 1.0
    assert get("streamlearn_metric_threshold", {"pipeline": "p", "metric": "rolling_accuracy"}
               ) == 0.6
    assert get("streamlearn_metric_bigger_is_better", {"pipeline": "p", "metric": "accuracy"}
               ) == 1
    assert get("streamlearn_label_delay_seconds_bucket", {"pipeline": "p", "le": "60.0"}) == 1
    assert get("streamlearn_event_to_prediction_seconds_count", {"pipeline": "p"}) == 2


def test_a_batch_observed_through_the_collector_equals_observing_one_by_one():
    rng = random.Random(1)
    values = [rng.expovariate(50) for _ in range(2000)] + [0.0005, 0.001, 10.0, 99.0]
    one, many = CollectorRegistry(), CollectorRegistry()
    per_event = Histogram("lat_seconds", "Latency.", ["pipeline"], buckets=LATENCY_BUCKETS,
                          registry=one).labels("p")
    for v in values:
        per_event.observe(v)
    batched = BatchHistogram("lat_seconds", "Latency.", ["pipeline"], LATENCY_BUCKETS,
                             registry=many).labels("p")
    for start in range(0, len(values), 500):  # in batches, as the hot path does
        batched.observe_batch(values[start:start + 500])
    batched.observe_batch([])
    assert samples(one) == samples(many)
    assert generate_latest(one).split(b"_created")[0] == generate_latest(many).split(
        b"_created")[0]


def test_scores_appear_once_set_and_go_when_the_partition_leaves():
    registry = CollectorRegistry()
    bound = create(registry).bind("p", "m")
    labels = {"pipeline": "p", "model": "m", "metric": "accuracy", "partition": "3"}
    assert registry.get_sample_value("streamlearn_model_score", labels) is None
    scorer = Scoring.of(["accuracy"]).new()
    for y, served in [(True, True), (True, False), (True, True), (True, True)]:
        scorer.update(y, served, None)
    bound.scores.set(3, scorer)
    assert registry.get_sample_value("streamlearn_model_score", labels) == 0.75
    bound.forget_partition(3)
    assert registry.get_sample_value("streamlearn_model_score", labels) is None


def test_a_partition_that_leaves_takes_its_gauges_and_only_its_own():
    registry = CollectorRegistry()
    bound = create(registry).bind("p", "m")
    for partition in (0, 1):
        bound.drift.set_estimate("data", "ADWIN", "amount", partition, 1.0)
        bound.drift.set_stability("data", "amount", partition, 0.1)
        bound.partitions.count_features(Features(partition), "user")
    join = bound.join(1, "p.served")
    bound.forget_partition(1)
    join.forget()
    left = {(s.name, s.labels.get("partition")) for m in registry.collect() for s in m.samples
            if "partition" in s.labels}
    assert {partition for _, partition in left} == {"0"}
    assert ("streamlearn_stability_index", "0") in left
    assert ("streamlearn_feature_entities", "0") in left


def test_only_monitoring_binds_label_children():
    """Children are bound once, in a view; a ``.labels(`` elsewhere would bind per call."""
    offenders = [str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
                 if path.parent.name != "monitoring"
                 and re.search(r"\.labels\(|\.family\.", path.read_text())]
    assert offenders == []
