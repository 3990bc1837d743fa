"""What the learner restores from a snapshot besides its offsets: the candidate set, bound
again to the pipeline's factories, policy and drift settings, and the ids already learned
(the event-time seen-set, and per label join the ids its restart may write again)."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from streamlearn.models.candidates import Candidates
from streamlearn.models.drift import DriftOptions
from streamlearn.models.learner import Learner
from streamlearn.models.online import OnlineModel
from streamlearn.spec.pipeline import Pipeline

__all__ = ["candidate_set", "load_seen"]

log = logging.getLogger(__name__)


def candidate_set(payload: Any, spec: Pipeline, drift: DriftOptions) -> Candidates:
    """The candidate set of a snapshot's payload, bound to ``spec``'s factories and policy
    (a fresh one when there is none; a bootstrapped model becomes its champion)."""
    if isinstance(payload, Candidates):
        payload.bind(spec.candidates())
        policy = spec.policy()
        if policy.settings() != payload.policy.settings():
            log.info("drift policy %s replaces the snapshot's %s", policy.settings(),
                     payload.policy.settings())
            payload.policy = policy
        if not drift.enabled:
            payload.adwin_delta = None
            for model in payload.models.values():
                model.concept = None
        restarted = payload.rescore(spec.scoring)
        if restarted:
            log.info("metrics %s replace the snapshot's: scores of %s start over",
                     ", ".join(spec.scoring.names), ", ".join(restarted))
        return payload
    candidates = Candidates(spec.candidates(), policy=spec.policy(), scoring=spec.scoring,
                            adwin_delta=drift.adwin_delta if drift.enabled else None)
    if isinstance(payload, OnlineModel):
        if not drift.enabled:
            payload.concept = None
        payload.rescore(spec.scoring)
        candidates.adopt(payload)
        candidates.examples = payload.version
    return candidates


def load_seen(learner: Learner, raw: bytes) -> dict[int, dict[str, int]]:
    """Load the ids a snapshot says were learned into ``learner``; return, per label join,
    the ids its next restart may write again (a snapshot of an older version: none)."""
    stored = orjson.loads(raw) if raw else {}
    if isinstance(stored.get("seen"), dict):
        learner.load_seen(orjson.dumps(stored["seen"]))
        return {int(s): dict(w) for s, w in (stored.get("replayable") or {}).items()}
    learner.load_seen(raw)
    return {}
