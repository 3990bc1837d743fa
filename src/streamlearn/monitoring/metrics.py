"""Every Prometheus metric streamlearn exports: ``create(registry)`` builds them, ``bind`` the
views of one pipeline.

Each metric is declared once, in :mod:`.catalog`; ``create`` registers them all on the
registry you pass (tests pass a fresh one). ``bind(pipeline, model)`` gives the pipeline's
:class:`PipelineMetrics`: the views every partition shares, bound at once, and the views of
the subsystems a worker may run (broker watch, label joins, learner, serving), each bound
when its subsystem is built (:mod:`.views`). Nothing outside this package calls ``labels()``.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> from streamlearn.models.scoring import Scoring
>>> bound = create(registry).bind("phishing", "LogReg")
>>> bound.partitions.events.inc(2)
>>> registry.get_sample_value("streamlearn_events_total", {"pipeline": "phishing"})
2.0
>>> score = {"pipeline": "phishing", "model": "LogReg", "metric": "accuracy", "partition": "0"}
>>> registry.get_sample_value("streamlearn_model_score", score)  # none before the first example
>>> scorer = Scoring.of(["accuracy"]).new()
>>> for y, served in [(True, True), (False, True)]:
...     scorer.update(y, served, None)
>>> bound.scores.set(0, scorer)
>>> registry.get_sample_value("streamlearn_model_score", score)
0.5
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streamlearn.monitoring.families import Families
from streamlearn.monitoring.views import (
    BrokerMetrics,
    DriftMetrics,
    JoinMetrics,
    LearnerMetrics,
    MetricChoice,
    PartitionMetrics,
    ScoreMetrics,
    ServingMetrics,
    SnapshotMetrics,
)

__all__ = ["MetricChoice", "Metrics", "PipelineMetrics", "create"]


class Metrics(Families):
    """The families of one registry; :meth:`bind` gives one pipeline's views of them."""

    def bind(self, pipeline: str, model: str,
             choice: MetricChoice = MetricChoice()) -> PipelineMetrics:  # noqa: B008 (frozen)
        return PipelineMetrics(self, pipeline, model, choice)


class PipelineMetrics:
    """One pipeline's metrics (``model``: its model's name, ``choice``: its metrics)."""

    def __init__(self, families: Families, pipeline: str, model: str,
                 choice: MetricChoice) -> None:
        self.families, self.pipeline, self.model, self.choice = families, pipeline, model, choice
        self.partitions = PartitionMetrics(families, pipeline, model)
        self.snapshots = SnapshotMetrics(families, pipeline)
        self.scores = ScoreMetrics(families, pipeline, model, choice)
        self.drift = DriftMetrics(families, pipeline, model)

    def broker(self) -> BrokerMetrics:
        """The hot path's Kafka clients (exports ``broker_up`` 1 from now on)."""
        return BrokerMetrics(self.families, self.pipeline)

    def join(self, partition: int, served_topic: str) -> JoinMetrics:
        return JoinMetrics(self.families, self.pipeline, partition, served_topic)

    def learner(self, topic: str) -> LearnerMetrics:
        return LearnerMetrics(self.families, self.pipeline, self.model, self.choice.names,
                              topic)

    def serving(self) -> ServingMetrics:
        return ServingMetrics(self.families, self.pipeline)

    def forget_partition(self, partition: int) -> None:
        """Stop exporting the gauges of a partition this worker no longer owns."""
        self.drift.forget_partition(partition)
        self.partitions.forget_partition(partition)
        self.scores.forget_partition(partition)


def create(registry: CollectorRegistry, prefix: str = "streamlearn") -> Metrics:
    """Every metric of the catalog, registered on ``registry`` as ``<prefix>_<name>``."""
    return Metrics(registry, prefix)
