"""``streamlearn run``: everything a worker needs, wired together, then faust's Worker."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from streamlearn.broker import ensure_pipeline_topics
from streamlearn.config import Settings
from streamlearn.errors import PipelineError
from streamlearn.models.keys import model_key
from streamlearn.models.online import OnlineModel
from streamlearn.monitoring import metrics
from streamlearn.monitoring.exporter import serve_metrics
from streamlearn.monitoring.views import MetricChoice
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams.app import create_app, run
from streamlearn.streams.hot_path import HotPath

__all__ = ["build_worker", "metric_choice", "run_worker"]

log = logging.getLogger(__name__)


def build_worker(
    spec: Pipeline, settings: Settings, registry: CollectorRegistry = REGISTRY,
    rebuild: bool = False,
) -> tuple[Any, HotPath]:
    bound = metrics.create(registry).bind(spec.name, OnlineModel(spec.model()).name,
                                          metric_choice(spec))
    hot_path = HotPath(spec, settings, model_key(settings), bound, rebuild=rebuild)
    return create_app(spec, settings), hot_path


def metric_choice(spec: Pipeline) -> MetricChoice:
    """What the exporter needs of the pipeline's metrics."""
    scoring = spec.scoring
    return MetricChoice(scoring.names, tuple(m.bigger_is_better for m in scoring.metrics),
                        spec.metric_threshold, spec.alert_min_examples)


def run_worker(spec: Pipeline, settings: Settings, loglevel: str = "info",
               rebuild: bool = False) -> None:
    """Start (or reach) the broker, create topics, serve metrics, run until SIGTERM/SIGINT.

    The caller makes SIGTERM a clean exit until faust installs its handlers (``cli.run``).
    """
    if rebuild and len(spec.stages) > 1:
        # The re-keyed topics hold events forwarded with the old spec's features.
        rekeyed = ", ".join(stage.topic for stage in spec.stages[1:])
        raise PipelineError(
            f"pipeline {spec.name!r} re-keys its events ({rekeyed}): --rebuild cannot "
            "relearn them in place; run `streamlearn reset` on it, then `streamlearn run`"
        )
    ensure_pipeline_topics(spec, settings)
    app, hot_path = build_worker(spec, settings, rebuild=rebuild)
    serve_metrics(settings, REGISTRY)
    models = (f"model {OnlineModel(spec.model()).name}" if not spec.has_candidates else
              "candidates " + ", ".join(f"{name} ({OnlineModel(factory()).name})"
                                        for name, factory in spec.candidates().items())
              + f", champion {spec.champion}, drift policy {spec.policy().name}")
    log.info(
        "pipeline %s: %s -> %s (dead letters: %s, snapshots: %s), %s",
        spec.name, spec.events_topic, spec.predictions_topic, spec.dlq_topic,
        spec.models_topic, models,
    )
    run(app, hot_path, loglevel)
