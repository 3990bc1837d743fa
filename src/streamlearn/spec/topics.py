"""Configs of the topics a pipeline's worker creates (``streamlearn run``, ``bootstrap``,
the demo and the tests create them the same way)."""

from __future__ import annotations

from streamlearn.config import Settings
from streamlearn.spec.pipeline import Pipeline

__all__ = ["topic_configs"]

HOUR_MS = 3_600_000


def topic_configs(spec: Pipeline, settings: Settings) -> dict[str, dict[str, str]]:
    """Configs of the topics the worker creates: a replayable events topic, compacted models
    and feature state.

    >>> from streamlearn.spec.pipeline import Pipeline
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
