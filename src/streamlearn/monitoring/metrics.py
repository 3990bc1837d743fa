"""Every Prometheus metric streamlearn exports, defined in one place.

``create(registry)`` builds them on the registry you pass (tests pass a fresh one); hot
paths use children pre-bound to their labels, which costs ~0.5 µs per inc instead of ~2.3.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> bound = create(registry).bind("phishing", "LogReg")
>>> bound.events.inc(2)
>>> registry.get_sample_value("streamlearn_events_total", {"pipeline": "phishing"})
2.0
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["BoundMetrics", "Metrics", "create"]

# 0.5 ms .. 10 s: a healthy pipeline sits in the low milliseconds, a backlog in seconds.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
DEAD_LETTER_REASONS = ("invalid_json", "not_object", "missing_field")


@dataclass(frozen=True)
class Metrics:
    events: Counter
    predictions: Counter
    dead_letters: Counter
    examples_learned: Counter
    event_to_prediction: Histogram
    model_score: Gauge
    batch_size: Histogram

    def bind(self, pipeline: str, model: str, metric: str = "accuracy") -> BoundMetrics:
        """Children for one pipeline and model, created once so hot paths only inc/observe."""
        return BoundMetrics(
            events=self.events.labels(pipeline),
            predictions=self.predictions.labels(pipeline, model),
            dead_letters={r: self.dead_letters.labels(pipeline, r) for r in DEAD_LETTER_REASONS},
            examples_learned=self.examples_learned.labels(pipeline, model),
            event_to_prediction=self.event_to_prediction.labels(pipeline),
            score=self.model_score.labels(pipeline, model, metric),
            rolling_score=self.model_score.labels(pipeline, model, "rolling_" + metric),
            batch_size=self.batch_size.labels(pipeline),
        )


@dataclass(frozen=True)
class BoundMetrics:
    events: Counter
    predictions: Counter
    dead_letters: dict[str, Counter]
    examples_learned: Counter
    event_to_prediction: Histogram
    score: Gauge
    rolling_score: Gauge
    batch_size: Histogram


def create(registry: CollectorRegistry, prefix: str = "streamlearn") -> Metrics:
    return Metrics(
        events=Counter(
            f"{prefix}_events", "Events consumed.", ["pipeline"], registry=registry
        ),
        predictions=Counter(
            f"{prefix}_predictions", "Predictions produced.", ["pipeline", "model"],
            registry=registry,
        ),
        dead_letters=Counter(
            f"{prefix}_dead_letters", "Events sent to the dead-letter topic.",
            ["pipeline", "reason"], registry=registry,
        ),
        examples_learned=Counter(
            f"{prefix}_examples_learned", "Labelled examples the model learned from.",
            ["pipeline", "model"], registry=registry,
        ),
        event_to_prediction=Histogram(
            f"{prefix}_event_to_prediction_seconds",
            "Kafka record timestamp of an event to its prediction being produced.",
            ["pipeline"], buckets=LATENCY_BUCKETS, registry=registry,
        ),
        model_score=Gauge(
            f"{prefix}_model_score",
            "Prequential (test-then-train) score of a model; rolling_* over the last 1000.",
            ["pipeline", "model", "metric"], registry=registry,
        ),
        batch_size=Histogram(
            f"{prefix}_batch_size", "Events per processed batch.", ["pipeline"],
            buckets=BATCH_BUCKETS, registry=registry,
        ),
    )
