"""Every Prometheus metric streamlearn exports, each declared once: type, name, help, labels.

:data:`CATALOG` is what ``metrics.create(registry)`` builds, in this order; the views
(``monitoring.views``) bind children of its families by the names given here. A name lacks
the ``streamlearn_`` prefix (``create`` adds it) and a counter's ``_total`` (prometheus_client
adds it): ``events`` is exported as ``streamlearn_events_total``.

>>> {m.type for m in CATALOG} == {"counter", "gauge", "histogram"}
True
>>> next(m for m in CATALOG if m.name == "events")
CounterMetric(name='events', help='Events consumed.', labels=('pipeline',))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

from streamlearn.monitoring.batch_histogram import BatchHistogram

__all__ = [
    "CATALOG",
    "DEAD_LETTER_REASONS",
    "LABEL_OUTCOMES",
    "LATENCY_BUCKETS",
    "SNAPSHOT_REFUSALS",
    "BatchHistogramMetric",
    "CounterMetric",
    "GaugeMetric",
    "HistogramMetric",
    "Metric",
]

# 0.5 ms .. 10 s: a healthy pipeline sits in the low milliseconds, a backlog in seconds.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
# A label comes seconds (a click) to weeks (a chargeback) after its event.
LABEL_DELAY_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400, 30 * 86400)

# Label values bound up front, so each series is exported (at 0) from the start.
DEAD_LETTER_REASONS = (
    "invalid_json", "not_object", "too_large", "missing_field", "bad_type", "bad_time",
    "feature_error", "model_error",
)
LABEL_OUTCOMES = ("joined", "late", "orphan", "duplicate", "expired")
SNAPSHOT_REFUSALS = (
    "unsigned", "bad_signature", "bad_digest", "incomplete", "bad_payload", "river_version",
    "spec_changed",
)


@dataclass(frozen=True)
class Metric:
    """One exported metric; ``build`` makes its family on a registry."""

    name: str
    help: str
    labels: tuple[str, ...]
    type: ClassVar[str]

    def build(self, full_name: str, registry: CollectorRegistry) -> Collector:
        raise NotImplementedError


@dataclass(frozen=True)
class CounterMetric(Metric):
    type: ClassVar[str] = "counter"

    def build(self, full_name: str, registry: CollectorRegistry) -> Counter:
        return Counter(full_name, self.help, self.labels, registry=registry)


@dataclass(frozen=True)
class GaugeMetric(Metric):
    type: ClassVar[str] = "gauge"

    def build(self, full_name: str, registry: CollectorRegistry) -> Gauge:
        return Gauge(full_name, self.help, self.labels, registry=registry)


@dataclass(frozen=True)
class HistogramMetric(Metric):
    """A histogram observed one value at a time (a snapshot's duration, a batch's size)."""

    buckets: tuple[float, ...]
    type: ClassVar[str] = "histogram"

    def build(self, full_name: str, registry: CollectorRegistry) -> Histogram:
        return Histogram(full_name, self.help, self.labels, buckets=self.buckets,
                         registry=registry)


@dataclass(frozen=True)
class BatchHistogramMetric(Metric):
    """A histogram observed a batch of values at a time (the per-event latencies)."""

    buckets: tuple[float, ...]
    type: ClassVar[str] = "histogram"

    def build(self, full_name: str, registry: CollectorRegistry) -> BatchHistogram:
        return BatchHistogram(full_name, self.help, self.labels, self.buckets, registry)


P = ("pipeline",)

CATALOG: tuple[Metric, ...] = (
    CounterMetric("events", "Events consumed.", P),
    CounterMetric("predictions", "Predictions produced.", (*P, "model")),
    CounterMetric(
        "dead_letters", "Events sent to the dead-letter topic, by reason.", (*P, "reason")),
    CounterMetric(
        "undeclared_fields", "Event fields ignored because the spec does not declare them.",
        P),
    CounterMetric(
        "examples_learned", "Labelled examples the model learned from.", (*P, "model")),
    BatchHistogramMetric(
        "event_to_prediction_seconds",
        "Kafka record timestamp of an event to its prediction being produced.", P,
        buckets=LATENCY_BUCKETS),
    GaugeMetric(
        "model_score", "Each metric the pipeline chose (metric), prequential (test-then-train) "
        "over every example a partition's model scored; rolling_* over the last 1000.",
        (*P, "model", "metric", "partition")),
    GaugeMetric(
        "model_score_ready", "1 once a partition's model scored enough examples for the alert "
        "(alert_min_examples), with both classes in its window for a binary primary metric.",
        (*P, "model", "partition")),
    GaugeMetric(
        "metric_threshold", "Alert threshold of the pipeline's primary metric, on its rolling "
        "value (metric: rolling_<primary>); absent when the pipeline sets none.",
        (*P, "metric")),
    GaugeMetric(
        "metric_bigger_is_better", "1 when a bigger value of the metric is better (ROC AUC, "
        "accuracy), 0 when smaller is (MAE, log loss): River's bigger_is_better.",
        (*P, "metric")),
    HistogramMetric(
        "batch_size", "Events per processed batch.", P, buckets=BATCH_BUCKETS),
    CounterMetric("snapshots", "Model snapshots written.", P),
    HistogramMetric(
        "snapshot_seconds", "Time to pickle, sign and hand a snapshot to Kafka.", P,
        buckets=LATENCY_BUCKETS),
    GaugeMetric(
        "snapshot_bytes", "Size of the last model snapshot written.", P),
    CounterMetric(
        "snapshots_refused", "Snapshots refused on restore (never unpickled), by reason.",
        (*P, "reason")),
    CounterMetric("restores", "Partition models restored from a snapshot.", P),
    GaugeMetric(
        "feature_entities", "Entities whose feature state a partition holds (entity: the "
        "field they are of).", (*P, "entity", "partition")),
    CounterMetric(
        "late_events", "Events older than their entity's newest by more than the lateness: "
        "served, not added to the entity's state.", P),
    CounterMetric(
        "entities_expired", "Entities dropped after entity_ttl of event time idle.", P),
    CounterMetric(
        "entity_events_dropped", "Events dropped from an entity's state beyond "
        "max_entity_events.", P),
    CounterMetric(
        "entities_lost", "Entities whose state could not be restored (only after a refused "
        "snapshot forced an older one).", P),
    CounterMetric(
        "drift_detections", "Drift signals, by kind (concept, data, prediction, label), "
        "detector, feature ('' for concept) and level (drift, warning).",
        (*P, "model", "kind", "detector", "feature", "level")),
    GaugeMetric(
        "drift_estimate", "ADWIN's current mean: of the model's error (concept) or of a "
        "numeric feature's value (data).",
        (*P, "model", "kind", "detector", "feature", "partition")),
    GaugeMetric(
        "stability_index", "Population stability index of a field's recent values against "
        "its reference (data: a feature; prediction; label).",
        (*P, "kind", "feature", "partition")),
    GaugeMetric(
        "broker_up", "0 while the worker's Kafka clients reach no broker, else 1.", P),
    CounterMetric(
        "broker_outages", "Times the worker lost every broker.", P),
    CounterMetric(
        "broker_outage_seconds", "Seconds spent without a broker (counted when it is back).",
        P),
    CounterMetric(
        "labels", "Labels and served records by what the join made of them: joined, late "
        "(label after its record expired), orphan (label for an unknown event), duplicate "
        "(a second label), expired (a served record whose label never came).",
        (*P, "outcome")),
    GaugeMetric(
        "labels_pending", "Served records and labels waiting for their other half in the "
        "label join.", (*P, "partition")),
    BatchHistogramMetric(
        "label_delay_seconds", "Event time from a served event to its label.", P,
        buckets=LABEL_DELAY_BUCKETS),
    GaugeMetric(
        "learner_active", "1 on the worker whose learner is the active one (it owns "
        "<name>.training), 0 on standbys.", P),
    GaugeMetric(
        "learner_generation", "Generation of the active learner (bumped at each takeover; "
        "snapshots of older generations are ignored).", P),
    GaugeMetric(
        "learner_examples", "Examples the active learner has learned, as last published.", P),
    CounterMetric(
        "examples_duplicate", "Training examples the learner skipped: their event was "
        "learned already (a replay of the label join).", P),
    GaugeMetric(
        "serving_examples", "Examples the model this worker serves had learned.", P),
    GaugeMetric(
        "model_staleness_examples", "Examples the learner has learned that the model this "
        "worker serves lacks.", P),
    HistogramMetric(
        "snapshot_load_seconds", "Time to verify and unpickle a served snapshot (holds the "
        "GIL).", P, buckets=LATENCY_BUCKETS),
    GaugeMetric(
        "consumer_lag", "Records of an input partition not yet consumed (librdkafka's "
        "consumer_lag).", (*P, "topic", "partition")),
    GaugeMetric(
        "candidate_score", "Each metric of each candidate model on the learner, prequential "
        "(scored on what was served for it); rolling_* over the last 1000.",
        (*P, "candidate", "metric")),
    CounterMetric(
        "policy_actions", "What the drift policy did (reset, challenge, promote, retire, "
        "switch) and registry commands applied (promote, rollback).", (*P, "action")),
    CounterMetric(
        "commands_refused", "Registry commands the learner refused (bad_signature, "
        "replayed, not_found, ...).", (*P, "reason")),
    GaugeMetric(
        "merge_waiting", "Records of a partition that several sources write (<name>.served, "
        "<name>.training) held until every source has passed them in event time.",
        (*P, "topic", "partition")),
    CounterMetric(
        "merge_late", "Records released out of event-time order: written by a source after "
        "it had been idle (STREAMLEARN_IDLE_AFTER) with an earlier event time than records "
        "already released.", (*P, "topic")),
    CounterMetric(
        "inputs_idle", "Times an input partition was read to its end and stayed silent for "
        "STREAMLEARN_IDLE_AFTER, so that operators reading it stopped waiting for it.",
        (*P, "topic")),
    GaugeMetric(
        "label_outcomes", "What the label join of a partition made of every label and "
        "served record so far (kept in its checkpoints, so a restart neither loses nor "
        "repeats them): joined, late, orphan, duplicate, expired.",
        (*P, "partition", "outcome")),
)
