"""``streamlearn run``: everything a worker needs, wired together, then faust's Worker."""

from __future__ import annotations

import logging

import faust
from prometheus_client import REGISTRY, CollectorRegistry

from streamlearn.broker import ensure_broker
from streamlearn.broker.admin import create_topics
from streamlearn.config import Settings
from streamlearn.models.online import OnlineModel
from streamlearn.monitoring import metrics
from streamlearn.monitoring.exporter import serve_metrics
from streamlearn.pipeline import Pipeline
from streamlearn.streams.app import create_app
from streamlearn.streams.processor import EventProcessor

__all__ = ["build_worker", "pipeline_topics", "run_worker"]

log = logging.getLogger(__name__)


def pipeline_topics(spec: Pipeline) -> dict[str, int]:
    """Every topic the pipeline reads or writes, with its partition count."""
    return {
        spec.events_topic: spec.partitions,
        spec.predictions_topic: spec.partitions,
        spec.dlq_topic: 1,
    }


def build_worker(
    spec: Pipeline, settings: Settings, registry: CollectorRegistry = REGISTRY
) -> tuple[faust.App, EventProcessor]:
    model = OnlineModel(spec.model())
    bound = metrics.create(registry).bind(spec.name, model.name, model.metric_name)
    processor = EventProcessor(spec, model, bound)
    return create_app(spec, settings, processor), processor


def run_worker(spec: Pipeline, settings: Settings, loglevel: str = "info") -> None:
    """Start (or reach) the broker, create topics, serve metrics, run until SIGTERM/SIGINT."""
    bootstrap = ensure_broker(settings)
    create_topics(bootstrap, pipeline_topics(spec))
    app, processor = build_worker(spec, settings)
    serve_metrics(settings, REGISTRY)
    log.info(
        "pipeline %s: %s -> %s (dead letters: %s), model %s",
        spec.name, spec.events_topic, spec.predictions_topic, spec.dlq_topic,
        processor.model.name,
    )
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
