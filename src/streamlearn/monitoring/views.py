"""What each subsystem of the worker exports, as children of the catalog's families bound once.

``labels()`` costs a lock and a lookup (~2.3 µs against ~0.5 for an inc on a bound child), so
a view binds its children when its subsystem is built (a label join when its partition is
assigned), and the label values known only later (a feature, a topic, a reason) at first use,
kept in :class:`Children`. Gauges get a child only once there is a value: an idle worker
exports no score at all rather than a 0.0 that an alert would take for a bad model.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from prometheus_client import Gauge
from prometheus_client.metrics import MetricWrapperBase

from streamlearn.monitoring.catalog import DEAD_LETTER_REASONS, LABEL_OUTCOMES, SNAPSHOT_REFUSALS
from streamlearn.monitoring.families import Families

if TYPE_CHECKING:
    from streamlearn.features.online import PartitionFeatures
    from streamlearn.models.scoring import Scorer

__all__ = [
    "BrokerMetrics",
    "Children",
    "DriftMetrics",
    "JoinMetrics",
    "LearnerMetrics",
    "MetricChoice",
    "PartitionMetrics",
    "ScoreMetrics",
    "ServingMetrics",
    "SnapshotMetrics",
]

W = TypeVar("W", bound=MetricWrapperBase)


@dataclass(frozen=True)
class MetricChoice:
    """What the exporter needs of a pipeline's metrics (``Pipeline.metrics``): their names,
    the first being the primary one, their directions, the alert's threshold on the
    primary's rolling value and the examples a model scores before it may fire."""

    names: tuple[str, ...] = ("accuracy",)
    bigger_is_better: tuple[bool, ...] = (True,)
    threshold: float | None = None
    min_examples: int = 1000


class Children(Generic[W]):
    """A family's children under fixed leading label values, each bound at first use."""

    def __init__(self, family: W, *fixed: str) -> None:
        self.family, self.fixed = family, fixed
        self.bound: dict[tuple[str, ...], W] = {}

    def __call__(self, *values: str) -> W:
        child = self.bound.get(values)
        if child is None:
            child = self.bound[values] = self.family.labels(*self.fixed, *values)
        return child

    def remove_where_last(self, value: str) -> None:
        """Stop exporting the children whose last label is ``value`` (a partition)."""
        for values in [v for v in self.bound if v[-1] == value]:
            del self.bound[values]
            self.family.remove(*self.fixed, *values)


class PartitionMetrics:
    """What the hot path's partitions count, once per batch (each inc takes a lock)."""

    def __init__(self, families: Families, pipeline: str, model: str) -> None:
        counter = families.counter
        self.events = counter("events").labels(pipeline)
        self.predictions = counter("predictions").labels(pipeline, model)
        self.dead_letters = {reason: counter("dead_letters").labels(pipeline, reason)
                             for reason in DEAD_LETTER_REASONS}
        self.undeclared_fields = counter("undeclared_fields").labels(pipeline)
        self.examples_learned = counter("examples_learned").labels(pipeline, model)
        self.latency = families.batch_histogram("event_to_prediction_seconds").labels(pipeline)
        self.batch_size = families.histogram("batch_size").labels(pipeline)
        self.late_events = counter("late_events").labels(pipeline)
        self.entities_expired = counter("entities_expired").labels(pipeline)
        self.entity_events_dropped = counter("entity_events_dropped").labels(pipeline)
        self.entities = Children(families.gauge("feature_entities"), pipeline)

    def count_features(self, features: PartitionFeatures, entity: str) -> None:
        """Move the feature counters of one partition by what happened since the last call."""
        late, expired, dropped = features.take_counts()
        if late:
            self.late_events.inc(late)
        if expired:
            self.entities_expired.inc(expired)
        if dropped:
            self.entity_events_dropped.inc(dropped)
        self.entities(entity, str(features.partition)).set(len(features.entities))

    def forget_partition(self, partition: int) -> None:
        self.entities.remove_where_last(str(partition))


class ScoreMetrics:
    """Each chosen metric of each partition's model (or the global one), prequential and
    rolling; whether it is ready for the alert; the pipeline's threshold and directions."""

    def __init__(self, families: Families, pipeline: str, model: str,
                 scoring: MetricChoice) -> None:
        self.family = families.gauge("model_score")
        self.ready_family = families.gauge("model_score_ready")
        self.pipeline, self.model, self.choice = pipeline, model, scoring
        self.names = (*scoring.names, *("rolling_" + n for n in scoring.names))
        self._bound: dict[int | str, tuple[tuple[Gauge, ...], Gauge]] = {}
        better = families.gauge("metric_bigger_is_better")
        for name, bigger in zip(self.names, scoring.bigger_is_better * 2, strict=True):
            better.labels(pipeline, name).set(1 if bigger else 0)
        if scoring.threshold is not None:
            families.gauge("metric_threshold").labels(
                pipeline, "rolling_" + scoring.names[0]).set(scoring.threshold)

    def set(self, partition: int | str, scorer: Scorer) -> None:
        """After the model has learned (called per partition per batch)."""
        bound = self._bound.get(partition)
        if bound is None:
            bound = self._bound[partition] = (tuple(
                self.family.labels(self.pipeline, self.model, name, str(partition))
                for name in self.names),
                self.ready_family.labels(self.pipeline, self.model, str(partition)))
        children, ready = bound
        for child, value in zip(children, (*scorer.values(), *scorer.rolling_values()),
                                strict=True):
            child.set(value)
        ready.set(1 if scorer.ready(self.choice.min_examples) else 0)

    def forget_partition(self, partition: int) -> None:
        self._bound.pop(partition, None)
        for name in self.names:
            with contextlib.suppress(KeyError):  # never exported for this partition
                self.family.remove(self.pipeline, self.model, name, str(partition))
        with contextlib.suppress(KeyError):
            self.ready_family.remove(self.pipeline, self.model, str(partition))


class DriftMetrics:
    """Drift signals and the detectors' estimates (rare, or once per batch)."""

    def __init__(self, families: Families, pipeline: str, model: str) -> None:
        self.detections = Children(families.counter("drift_detections"), pipeline, model)
        self.estimates = Children(families.gauge("drift_estimate"), pipeline, model)
        self.stability = Children(families.gauge("stability_index"), pipeline)

    def count(self, kind: str, detector: str, feature: str, level: str) -> None:
        self.detections(kind, detector, feature, level).inc()

    def set_estimate(self, kind: str, detector: str, feature: str, partition: int,
                     value: float) -> None:
        self.estimates(kind, detector, feature, str(partition)).set(value)

    def set_stability(self, kind: str, feature: str, partition: int, value: float) -> None:
        self.stability(kind, feature, str(partition)).set(value)

    def forget_partition(self, partition: int) -> None:
        self.estimates.remove_where_last(str(partition))
        self.stability.remove_where_last(str(partition))


class SnapshotMetrics:
    """Snapshots written (partitions, the learner), restored, and refused (any reader)."""

    def __init__(self, families: Families, pipeline: str) -> None:
        self.written = families.counter("snapshots").labels(pipeline)
        self.seconds = families.histogram("snapshot_seconds").labels(pipeline)
        self.refused = {reason: families.counter("snapshots_refused").labels(pipeline, reason)
                        for reason in SNAPSHOT_REFUSALS}
        self.restores = families.counter("restores").labels(pipeline)
        self.entities_lost = families.counter("entities_lost").labels(pipeline)
        self.size = Children(families.gauge("snapshot_bytes"), pipeline)

    def wrote(self, seconds: float, size: int) -> None:
        """One snapshot written: ``seconds`` to build and hand over, ``size`` bytes."""
        self.seconds.observe(seconds)
        self.written.inc()
        self.size().set(size)

    def refuse(self, reason: str) -> None:
        self.refused[reason].inc()


class BrokerMetrics:
    """The worker's Kafka clients: the broker reached, outages, inputs' lag and idleness."""

    def __init__(self, families: Families, pipeline: str) -> None:
        self.up = families.gauge("broker_up").labels(pipeline)
        self.up.set(1)  # a worker starts connected; its BrokerWatch reports a loss
        self.outages = Children(families.counter("broker_outages"), pipeline)
        self.outage_seconds = Children(families.counter("broker_outage_seconds"), pipeline)
        self.lag = Children(families.gauge("consumer_lag"), pipeline)
        self.idle = Children(families.counter("inputs_idle"), pipeline)

    def changed(self, up: bool, seconds: float) -> None:
        """The worker lost its broker (``up`` False) or has it back after ``seconds``."""
        self.up.set(1 if up else 0)
        if up:
            self.outage_seconds().inc(seconds)
        else:
            self.outages().inc()

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag(topic, str(partition)).set(lag)

    def input_idle(self, topic: str) -> None:
        self.idle(topic).inc()


class JoinMetrics:
    """One partition's label join; :meth:`forget` when the partition leaves this worker."""

    def __init__(self, families: Families, pipeline: str, partition: int,
                 served_topic: str) -> None:
        q = str(partition)
        pending, waiting = families.gauge("labels_pending"), families.gauge("merge_waiting")
        totals = families.gauge("label_outcomes")
        self.pending = pending.labels(pipeline, q)
        self.waiting = waiting.labels(pipeline, served_topic, q)
        self.late = families.counter("merge_late").labels(pipeline, served_topic)
        self.outcomes = {outcome: families.counter("labels").labels(pipeline, outcome)
                         for outcome in LABEL_OUTCOMES}
        self.totals = {outcome: totals.labels(pipeline, q, outcome) for outcome in LABEL_OUTCOMES}
        self.delay = families.batch_histogram("label_delay_seconds").labels(pipeline)
        self._gauges = [(pending, (pipeline, q)), (waiting, (pipeline, served_topic, q)),
                        *((totals, (pipeline, q, outcome)) for outcome in LABEL_OUTCOMES)]

    def forget(self) -> None:
        """Drop the partition's gauges (its counters and delays are the pipeline's)."""
        for family, labels in self._gauges:
            family.remove(*labels)


class LearnerMetrics:
    """The learner, active or standby: its state, the training merge, candidates, commands."""

    def __init__(self, families: Families, pipeline: str, model: str, names: tuple[str, ...],
                 topic: str) -> None:
        self.names = (*names, *("rolling_" + n for n in names))
        self.active = families.gauge("learner_active").labels(pipeline)
        self.generation = families.gauge("learner_generation").labels(pipeline)
        self.examples = families.gauge("learner_examples").labels(pipeline)
        self.duplicates = families.counter("examples_duplicate").labels(pipeline)
        self.examples_learned = families.counter("examples_learned").labels(pipeline, model)
        self.late = Children(families.counter("merge_late"), pipeline, topic)
        self.waiting = Children(families.gauge("merge_waiting"), pipeline, topic, "0")
        self.candidates = Children(families.gauge("candidate_score"), pipeline)
        self.actions = Children(families.counter("policy_actions"), pipeline)
        self.refused = Children(families.counter("commands_refused"), pipeline)

    def merged(self, waiting: int, late: int) -> None:
        """The training topic's merge after a step: records held, and released late."""
        if late:
            self.late().inc(late)
        self.waiting().set(waiting)

    def set_candidate_scores(self, name: str, scorer: Scorer) -> None:
        for metric, value in zip(self.names, (*scorer.values(), *scorer.rolling_values()),
                                 strict=True):
            self.candidates(name, metric).set(value)

    def count_action(self, action: str) -> None:
        self.actions(action).inc()

    def refuse_command(self, reason: str) -> None:
        self.refused(reason).inc()


class ServingMetrics:
    """A predictor's copy of the global model: its examples, its lag, its load time."""

    def __init__(self, families: Families, pipeline: str) -> None:
        self.staleness = families.gauge("model_staleness_examples").labels(pipeline)
        self.examples = families.gauge("serving_examples").labels(pipeline)
        self.load_seconds = families.histogram("snapshot_load_seconds").labels(pipeline)
