"""Every Prometheus metric streamlearn exports, defined in one place.

``create(registry)`` builds them on the registry you pass (tests pass a fresh one); hot
paths use children pre-bound to their labels, which costs ~0.5 µs per inc instead of ~2.3.
Gauges get a child only once there is a value: an idle worker exports no score at all
rather than a 0.0 that an alert would take for a bad model.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> bound = create(registry).bind("phishing", "LogReg")
>>> bound.events.inc(2)
>>> registry.get_sample_value("streamlearn_events_total", {"pipeline": "phishing"})
2.0
>>> registry.get_sample_value("streamlearn_model_score",
...     {"pipeline": "phishing", "model": "LogReg", "metric": "accuracy", "partition": "0"})
"""

from __future__ import annotations

import contextlib
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from streamlearn.features.online import PartitionFeatures

__all__ = [
    "DEAD_LETTER_REASONS",
    "LABEL_OUTCOMES",
    "SNAPSHOT_REFUSALS",
    "BoundMetrics",
    "Metrics",
    "create",
    "observe_many",
]

# 0.5 ms .. 10 s: a healthy pipeline sits in the low milliseconds, a backlog in seconds.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
DEAD_LETTER_REASONS = (
    "invalid_json", "not_object", "too_large", "missing_field", "bad_type", "bad_time",
    "feature_error", "model_error",
)
LABEL_OUTCOMES = ("joined", "late", "orphan", "duplicate", "expired")
# A label comes seconds (a click) to weeks (a chargeback) after its event.
LABEL_DELAY_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400, 30 * 86400)
SNAPSHOT_REFUSALS = (
    "unsigned", "bad_signature", "bad_digest", "incomplete", "bad_payload", "river_version",
    "spec_changed",
)


@dataclass(frozen=True)
class Metrics:
    events: Counter
    predictions: Counter
    dead_letters: Counter
    undeclared_fields: Counter
    examples_learned: Counter
    event_to_prediction: Histogram
    model_score: Gauge
    batch_size: Histogram
    snapshots: Counter
    snapshot_seconds: Histogram
    snapshot_bytes: Gauge
    snapshots_refused: Counter
    restores: Counter
    feature_entities: Gauge
    late_events: Counter
    entities_expired: Counter
    entity_events_dropped: Counter
    entities_lost: Counter
    drift_detections: Counter
    drift_estimate: Gauge
    stability_index: Gauge
    broker_up: Gauge
    broker_outages: Counter
    broker_outage_seconds: Counter
    labels: Counter
    labels_pending: Gauge
    label_delay: Histogram
    learner_active: Gauge
    learner_generation: Gauge
    learner_examples: Gauge
    examples_duplicate: Counter
    serving_examples: Gauge
    model_staleness: Gauge
    snapshot_load_seconds: Histogram
    consumer_lag: Gauge
    candidate_score: Gauge
    policy_actions: Counter
    commands_refused: Counter
    merge_waiting: Gauge
    merge_late: Counter
    inputs_idle: Counter
    label_outcomes: Gauge

    def bind(self, pipeline: str, model: str, metric: str = "accuracy") -> BoundMetrics:
        """Children for one pipeline and model, created once so hot paths only inc/observe."""
        return BoundMetrics(
            self,
            pipeline,
            model,
            metric,
            events=self.events.labels(pipeline),
            predictions=self.predictions.labels(pipeline, model),
            dead_letters={r: self.dead_letters.labels(pipeline, r) for r in DEAD_LETTER_REASONS},
            undeclared_fields=self.undeclared_fields.labels(pipeline),
            examples_learned=self.examples_learned.labels(pipeline, model),
            event_to_prediction=self.event_to_prediction.labels(pipeline),
            batch_size=self.batch_size.labels(pipeline),
            snapshots=self.snapshots.labels(pipeline),
            snapshot_seconds=self.snapshot_seconds.labels(pipeline),
            snapshots_refused={
                r: self.snapshots_refused.labels(pipeline, r) for r in SNAPSHOT_REFUSALS
            },
            restores=self.restores.labels(pipeline),
            late_events=self.late_events.labels(pipeline),
            entities_expired=self.entities_expired.labels(pipeline),
            entity_events_dropped=self.entity_events_dropped.labels(pipeline),
            entities_lost=self.entities_lost.labels(pipeline),
        )


@dataclass(frozen=True)
class BoundMetrics:
    family: Metrics
    pipeline: str
    model: str
    metric: str
    events: Counter
    predictions: Counter
    dead_letters: dict[str, Counter]
    undeclared_fields: Counter
    examples_learned: Counter
    event_to_prediction: Histogram
    batch_size: Histogram
    snapshots: Counter
    snapshot_seconds: Histogram
    snapshots_refused: dict[str, Counter]
    restores: Counter
    late_events: Counter
    entities_expired: Counter
    entity_events_dropped: Counter
    entities_lost: Counter
    _score_children: dict[int | str, tuple[Gauge, ...]] = field(default_factory=dict)
    _entity_children: dict[tuple[str, int], Gauge] = field(default_factory=dict)
    _drift_children: dict[tuple[Gauge, tuple[str, ...]], Gauge] = field(default_factory=dict)

    def set_scores(self, partition: int | str, score: float, rolling: float) -> None:
        """The prequential and rolling score of one partition's model (after it has one)."""
        children = self._score_children.get(partition)
        if children is None:  # bound once per partition: labels() costs a lock and a lookup
            children = tuple(
                self.family.model_score.labels(self.pipeline, self.model, metric, str(partition))
                for metric in (self.metric, "rolling_" + self.metric)
            )
            self._score_children[partition] = children
        children[0].set(score)
        children[1].set(rolling)

    def count_features(self, features: PartitionFeatures, entity: str) -> None:
        """Move the feature counters of one partition by what happened since the last call."""
        late, expired, dropped = features.take_counts()
        if late:
            self.late_events.inc(late)
        if expired:
            self.entities_expired.inc(expired)
        if dropped:
            self.entity_events_dropped.inc(dropped)
        child = (entity, features.partition)
        gauge = self._entity_children.get(child)
        if gauge is None:
            gauge = self.family.feature_entities.labels(self.pipeline, entity,
                                                        str(features.partition))
            self._entity_children[child] = gauge
        gauge.set(len(features.entities))

    def broker_changed(self, up: bool, seconds: float) -> None:
        """The worker lost its broker (``up`` False) or has it back after ``seconds``."""
        self.family.broker_up.labels(self.pipeline).set(1 if up else 0)
        if up:
            self.family.broker_outage_seconds.labels(self.pipeline).inc(seconds)
        else:
            self.family.broker_outages.labels(self.pipeline).inc()

    def set_candidate_scores(self, name: str, score: float, rolling: float) -> None:
        """One candidate's prequential and rolling score (on the learner)."""
        gauge = self.family.candidate_score
        gauge.labels(self.pipeline, name, self.metric).set(score)
        gauge.labels(self.pipeline, name, "rolling_" + self.metric).set(rolling)

    def count_action(self, action: str) -> None:
        self.family.policy_actions.labels(self.pipeline, action).inc()

    def count_drift(self, kind: str, detector: str, feature: str, level: str) -> None:
        """One drift signal (rare: the label lookup per call does not matter)."""
        self.family.drift_detections.labels(self.pipeline, self.model, kind, detector, feature,
                                            level).inc()

    def set_drift_estimate(self, kind: str, detector: str, feature: str, partition: int,
                           value: float) -> None:
        self._drift_gauge(self.family.drift_estimate,
                          (self.pipeline, self.model, kind, detector, feature, str(partition)),
                          value)

    def set_stability(self, kind: str, feature: str, partition: int, value: float) -> None:
        self._drift_gauge(self.family.stability_index,
                          (self.pipeline, kind, feature, str(partition)), value)

    def _drift_gauge(self, gauge: Gauge, labels: tuple[str, ...], value: float) -> None:
        child = self._drift_children.get((gauge, labels))
        if child is None:
            child = self._drift_children[(gauge, labels)] = gauge.labels(*labels)
        child.set(value)

    def forget_partition(self, partition: int) -> None:
        """Stop exporting the gauges of a partition this worker no longer owns."""
        for gauge, labels in [k for k in self._drift_children if k[1][-1] == str(partition)]:
            del self._drift_children[(gauge, labels)]
            gauge.remove(*labels)
        for entity, p in [c for c in self._entity_children if c[1] == partition]:
            del self._entity_children[(entity, p)]
            self.family.feature_entities.remove(self.pipeline, entity, str(p))
        self._score_children.pop(partition, None)
        for metric in (self.metric, "rolling_" + self.metric):
            labels = (self.pipeline, self.model, metric, str(partition))
            with contextlib.suppress(KeyError):  # never exported for this partition
                self.family.model_score.remove(*labels)

    def set_snapshot_bytes(self, size: int) -> None:
        self.family.snapshot_bytes.labels(self.pipeline).set(size)


def observe_many(histogram: Histogram, values: list[float]) -> None:
    """``histogram.observe(v)`` for each value, with one locked increment per bucket used.

    A per-event ``observe`` takes a lock twice; a batch of 500 events then spends more in
    the histogram than in the model's prediction. This bins the batch first (``bisect``:
    the first bucket whose upper bound is >= the value, as ``observe`` does).

    >>> from prometheus_client import CollectorRegistry
    >>> registry = CollectorRegistry()
    >>> h = Histogram("h_seconds", "", buckets=(0.1, 1.0), registry=registry)
    >>> observe_many(h, [0.05, 0.1, 0.5, 3.0])
    >>> [registry.get_sample_value("h_seconds_bucket", {"le": le}) for le in ("0.1", "1.0")]
    [2.0, 3.0]
    """
    if len(values) < 8:  # binning pays off from a few values on
        for value in values:
            histogram.observe(value)
        return
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1
    histogram._sum.inc(sum(values))
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)


def create(registry: CollectorRegistry, prefix: str = "streamlearn") -> Metrics:
    def counter(name: str, doc: str, *labels: str) -> Counter:
        return Counter(f"{prefix}_{name}", doc, labels, registry=registry)

    return Metrics(
        events=counter("events", "Events consumed.", "pipeline"),
        predictions=counter("predictions", "Predictions produced.", "pipeline", "model"),
        dead_letters=counter(
            "dead_letters", "Events sent to the dead-letter topic, by reason.",
            "pipeline", "reason",
        ),
        undeclared_fields=counter(
            "undeclared_fields", "Event fields ignored because the spec does not declare them.",
            "pipeline",
        ),
        examples_learned=counter(
            "examples_learned", "Labelled examples the model learned from.", "pipeline", "model"
        ),
        event_to_prediction=Histogram(
            f"{prefix}_event_to_prediction_seconds",
            "Kafka record timestamp of an event to its prediction being produced.",
            ["pipeline"], buckets=LATENCY_BUCKETS, registry=registry,
        ),
        model_score=Gauge(
            f"{prefix}_model_score",
            "Prequential (test-then-train) score of a partition's model; rolling_* over the "
            "last 1000.",
            ["pipeline", "model", "metric", "partition"], registry=registry,
        ),
        batch_size=Histogram(
            f"{prefix}_batch_size", "Events per processed batch.", ["pipeline"],
            buckets=BATCH_BUCKETS, registry=registry,
        ),
        snapshots=counter("snapshots", "Model snapshots written.", "pipeline"),
        snapshot_seconds=Histogram(
            f"{prefix}_snapshot_seconds", "Time to pickle, sign and hand a snapshot to Kafka.",
            ["pipeline"], buckets=LATENCY_BUCKETS, registry=registry,
        ),
        snapshot_bytes=Gauge(
            f"{prefix}_snapshot_bytes", "Size of the last model snapshot written.", ["pipeline"],
            registry=registry,
        ),
        snapshots_refused=counter(
            "snapshots_refused", "Snapshots refused on restore (never unpickled), by reason.",
            "pipeline", "reason",
        ),
        restores=counter(
            "restores", "Partition models restored from a snapshot.", "pipeline",
        ),
        feature_entities=Gauge(
            f"{prefix}_feature_entities",
            "Entities whose feature state a partition holds (entity: the field they are of).",
            ["pipeline", "entity", "partition"], registry=registry,
        ),
        late_events=counter(
            "late_events", "Events older than their entity's newest by more than the "
            "lateness: served, not added to the entity's state.", "pipeline",
        ),
        entities_expired=counter(
            "entities_expired", "Entities dropped after entity_ttl of event time idle.",
            "pipeline",
        ),
        entity_events_dropped=counter(
            "entity_events_dropped", "Events dropped from an entity's state beyond "
            "max_entity_events.", "pipeline",
        ),
        entities_lost=counter(
            "entities_lost", "Entities whose state could not be restored (only after a "
            "refused snapshot forced an older one).", "pipeline",
        ),
        drift_detections=counter(
            "drift_detections", "Drift signals, by kind (concept, data, prediction, label), "
            "detector, feature ('' for concept) and level (drift, warning).",
            "pipeline", "model", "kind", "detector", "feature", "level",
        ),
        drift_estimate=Gauge(
            f"{prefix}_drift_estimate", "ADWIN's current mean: of the model's error (concept) "
            "or of a numeric feature's value (data).",
            ["pipeline", "model", "kind", "detector", "feature", "partition"], registry=registry,
        ),
        stability_index=Gauge(
            f"{prefix}_stability_index", "Population stability index of a field's recent "
            "values against its reference (data: a feature; prediction; label).",
            ["pipeline", "kind", "feature", "partition"], registry=registry,
        ),
        broker_up=Gauge(
            f"{prefix}_broker_up", "0 while the worker's Kafka clients reach no broker, else 1.",
            ["pipeline"], registry=registry,
        ),
        broker_outages=counter(
            "broker_outages", "Times the worker lost every broker.", "pipeline",
        ),
        broker_outage_seconds=counter(
            "broker_outage_seconds", "Seconds spent without a broker (counted when it is back).",
            "pipeline",
        ),
        labels=counter(
            "labels", "Labels and served records by what the join made of them: joined, late "
            "(label after its record expired), orphan (label for an unknown event), duplicate "
            "(a second label), expired (a served record whose label never came).",
            "pipeline", "outcome",
        ),
        labels_pending=Gauge(
            f"{prefix}_labels_pending", "Served records and labels waiting for their other "
            "half in the label join.", ["pipeline", "partition"], registry=registry,
        ),
        label_delay=Histogram(
            f"{prefix}_label_delay_seconds", "Event time from a served event to its label.",
            ["pipeline"], buckets=LABEL_DELAY_BUCKETS, registry=registry,
        ),
        learner_active=Gauge(
            f"{prefix}_learner_active", "1 on the worker whose learner is the active one "
            "(it owns <name>.training), 0 on standbys.", ["pipeline"], registry=registry,
        ),
        learner_generation=Gauge(
            f"{prefix}_learner_generation", "Generation of the active learner (bumped at each "
            "takeover; snapshots of older generations are ignored).", ["pipeline"],
            registry=registry,
        ),
        learner_examples=Gauge(
            f"{prefix}_learner_examples", "Examples the active learner has learned, as last "
            "published.", ["pipeline"], registry=registry,
        ),
        examples_duplicate=counter(
            "examples_duplicate", "Training examples the learner skipped: their event was "
            "learned already (a replay of the label join).", "pipeline",
        ),
        serving_examples=Gauge(
            f"{prefix}_serving_examples", "Examples the model this worker serves had learned.",
            ["pipeline"], registry=registry,
        ),
        model_staleness=Gauge(
            f"{prefix}_model_staleness_examples", "Examples the learner has learned that the "
            "model this worker serves lacks.", ["pipeline"], registry=registry,
        ),
        snapshot_load_seconds=Histogram(
            f"{prefix}_snapshot_load_seconds", "Time to verify and unpickle a served snapshot "
            "(holds the GIL).", ["pipeline"], buckets=LATENCY_BUCKETS, registry=registry,
        ),
        consumer_lag=Gauge(
            f"{prefix}_consumer_lag", "Records of an input partition not yet consumed "
            "(librdkafka's consumer_lag).", ["pipeline", "topic", "partition"],
            registry=registry,
        ),
        candidate_score=Gauge(
            f"{prefix}_candidate_score", "Prequential score of each candidate model on the "
            "learner (scored on what was served for it); rolling_* over the last 1000.",
            ["pipeline", "candidate", "metric"], registry=registry,
        ),
        policy_actions=counter(
            "policy_actions", "What the drift policy did (reset, challenge, promote, retire, "
            "switch) and registry commands applied (promote, rollback).", "pipeline", "action",
        ),
        commands_refused=counter(
            "commands_refused", "Registry commands the learner refused (bad_signature, "
            "replayed, not_found, ...).", "pipeline", "reason",
        ),
        merge_waiting=Gauge(
            f"{prefix}_merge_waiting", "Records of a partition that several sources write "
            "(<name>.served, <name>.training) held until every source has passed them in "
            "event time.", ["pipeline", "topic", "partition"], registry=registry,
        ),
        merge_late=counter(
            "merge_late", "Records released out of event-time order: written by a source "
            "after it had been idle (STREAMLEARN_IDLE_AFTER) with an earlier event time than "
            "records already released.", "pipeline", "topic",
        ),
        inputs_idle=counter(
            "inputs_idle", "Times an input partition was read to its end and stayed silent "
            "for STREAMLEARN_IDLE_AFTER, so that operators reading it stopped waiting for it.",
            "pipeline", "topic",
        ),
        label_outcomes=Gauge(
            f"{prefix}_label_outcomes", "What the label join of a partition made of every "
            "label and served record so far (kept in its checkpoints, so a restart neither "
            "loses nor repeats them): joined, late, orphan, duplicate, expired.",
            ["pipeline", "partition", "outcome"], registry=registry,
        ),
    )
