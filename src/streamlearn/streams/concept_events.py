"""The learner's records on ``<name>.drift``: each concept-drift signal of a candidate's
detectors (``action`` "alert") and each thing a drift policy or a registry command did."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from streamlearn.models.candidates import Candidates
from streamlearn.models.duel import Action
from streamlearn.monitoring.views import DriftMetrics, LearnerMetrics

__all__ = ["ConceptEvents"]

log = logging.getLogger(__name__)


class ConceptEvents:
    """Writes concept drift events of generation ``generation`` to ``topic``."""

    def __init__(self, topic: str, drift: DriftMetrics, learner: LearnerMetrics) -> None:
        self.topic, self.drift, self.learner = topic, drift, learner
        self.generation = 0

    def signals(self, produce: Callable[..., None], candidates: Candidates, at_time: Any
                ) -> None:
        """Each detector signal of the example just learned (then forgotten)."""
        at = candidates.examples
        for name, signal in candidates.signals:
            self.drift.count("concept", signal.detector, "", signal.level)
            log.warning("concept %s (%s) on %s at example %d: %.4g", signal.level,
                        signal.detector, candidates.ids.get(name, name), at, signal.statistic)
            self._write(produce, name, {
                "detector": signal.detector, "level": signal.level,
                "statistic": signal.statistic, "at_example": at, "at_time": at_time,
                "action": "alert"})
        candidates.signals.clear()

    def action(self, produce: Callable[..., None], action: Action, at_time: Any) -> None:
        log.warning("drift policy: %s %s -> %s at example %d (%s)", action.kind,
                    action.source, action.target, action.at_example, action.reason)
        self.learner.count_action(action.kind)
        name = (action.source or action.target or "").partition("#")[0]
        self._write(produce, name, {
            "detector": None, "statistic": None, "at_example": action.at_example,
            "at_time": at_time, "action": action.kind, "from": action.source,
            "to": action.target, "reason": action.reason})

    def _write(self, produce: Callable[..., None], name: str, fields: dict[str, Any]) -> None:
        produce(self.topic, key=name.encode(), value=orjson.dumps({
            "model": name, "kind": "concept", **fields, "generation": self.generation}))
