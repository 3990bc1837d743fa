"""``streamlearn run``: everything a worker needs, wired together, then faust's Worker."""

from __future__ import annotations

import logging

import faust
from prometheus_client import REGISTRY, CollectorRegistry

from streamlearn.broker import ensure_broker
from streamlearn.broker.admin import create_topics
from streamlearn.config import Settings
from streamlearn.errors import PipelineError
from streamlearn.keys import model_key
from streamlearn.models.online import OnlineModel
from streamlearn.monitoring import metrics
from streamlearn.monitoring.exporter import serve_metrics
from streamlearn.pipeline import Pipeline
from streamlearn.streams.app import HotPathService, create_app
from streamlearn.streams.hot_path import HotPath

__all__ = ["build_worker", "run_worker", "topic_configs"]

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000


def topic_configs(spec: Pipeline, settings: Settings) -> dict[str, dict[str, str]]:
    """Configs of the topics the worker creates: a replayable events topic, compacted models
    and feature state.

    >>> from streamlearn.pipeline import Pipeline
    >>> spec = Pipeline(name="p", key_field="k", features={}, model=dict)
    >>> topic_configs(spec, Settings())["p"]
    {'retention.ms': '2592000000'}
    """
    hours = settings.events_retention_hours
    retention = {"retention.ms": str(-1 if hours < 0 else int(hours * HOUR_MS))}
    return {
        # Re-keyed topics rebuild their stage's state as the events topic does the first's.
        **{stage.topic: retention for stage in spec.stages},
        spec.models_topic: {"cleanup.policy": "compact"},
        spec.state_topic: {"cleanup.policy": "compact"},
    }


def build_worker(
    spec: Pipeline, settings: Settings, registry: CollectorRegistry = REGISTRY,
    rebuild: bool = False,
) -> tuple[faust.App, HotPath]:
    probe = OnlineModel(spec.model())
    bound = metrics.create(registry).bind(spec.name, probe.name, probe.metric_name)
    hot_path = HotPath(spec, settings, model_key(settings), bound, rebuild=rebuild)
    return create_app(spec, settings), hot_path


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
    bootstrap = ensure_broker(settings)
    create_topics(bootstrap, spec.topics, topic_configs(spec, settings), settings=settings)
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
    worker = faust.Worker(app, HotPathService(hot_path), loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
