"""The global learner's per-example logic: one candidate set (one model, or several side by
side), every partition's examples, in the order of ``<name>.training``; nothing here knows
Kafka (``streams.learner`` does).

Each example is the served record joined with its label: the learner scores the prediction
that was served (prequential with delay; a candidate whose served instance has since been
replaced predicts the example itself), then learns from the features as served, never
recomputed later. With candidates or a drift policy that acts, every candidate instead
predicts the example just before learning it (test-then-train in training order): a
challenger is never served, and comparing it with a champion scored on predictions made
seconds earlier by an older model would favour it; the served accuracy of every candidate
is still in the training records (``streamlearn report``). Then the drift policy acts.

The training topic is written at least once (a label join replays after a crash), so the
learner keeps the ids it learned, for twice the label TTL of event time, and skips a second
copy: a duplicate never makes the model learn twice.

>>> from river import linear_model
>>> learner = Learner(Candidates({"m": linear_model.LogisticRegression}), ttl_ms=60_000)
>>> example = {"event_id": "e1", "x": {"a": 1.0}, "label": True, "label_time": 5,
...            "champion": "m", "predictions": {"m": {"prediction": False}}}
>>> learner.learn(example), learner.learn(example), learner.model.version
(True, False, 1)
>>> learner.model.scorer.values()  # the served False was scored
[0.0]
"""

from __future__ import annotations

import heapq
import logging
from typing import Any

import orjson

from streamlearn.models.candidates import Action, Candidates
from streamlearn.models.online import OnlineModel

__all__ = ["Learner", "served_predictions", "served_proba"]

log = logging.getLogger(__name__)


def served_predictions(example: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """What was served for each candidate, by name, when it was served by the instance that
    will learn now (``ids``: name -> instance id): (label, probabilities). A record without
    instance ids (one model, or an older record) counts for the candidate of the same name.

    >>> served_predictions({"label": True, "predictions": {"m": {
    ...     "prediction": True, "proba": {"true": 0.9, "false": 0.1}}}}, {"m": "m#0"})
    {'m': (True, {True: 0.9, False: 0.1})}
    """
    out = {}
    for name, served in (example.get("predictions") or {}).items():
        instance = ids.get(name)
        if instance is not None and served.get("instance", instance) == instance:
            out[name] = (served.get("prediction"), served_proba(served.get("proba"),
                                                                example.get("label")))
    return out


def served_proba(proba: Any, label: Any) -> dict[Any, float] | None:
    """The probabilities by class as the model gave them, from a record: JSON made boolean
    classes the keys ``"true"`` and ``"false"``. None unless they are numbers by class.

    >>> served_proba({"true": 0.25, "false": 0.75}, False), served_proba("x", True)
    ({True: 0.25, False: 0.75}, None)
    """
    if not isinstance(proba, dict) or not all(
            type(p) in (float, int) for p in proba.values()):
        return None
    if isinstance(label, bool):
        return {key == "true": p for key, p in proba.items()}
    return proba


class Learner:
    """Deduplicates by event id, scores, learns; ``seen`` is bounded by the label TTL."""

    def __init__(self, candidates: Candidates, ttl_ms: float, score_served: bool = True) -> None:
        self.candidates = candidates
        self.score_served = score_served
        """Score what was served (one model: its delayed, served accuracy), or let each
        candidate predict the example itself just before learning it, so that candidates
        and a challenger (never served) are compared on the same footing (policies)."""
        self.actions: list[Action] = []
        """What the drift policy did since the caller last took them."""
        self.keep_ms = 2 * ttl_ms
        self.seen: dict[str, float] = {}
        """Event ids learned -> their label time, while within ``2 * ttl`` of the newest."""
        self._expiry: list[tuple[float, str]] = []
        self.watermark = float("-inf")
        self.duplicates = 0
        self.errors = 0

    def learn(self, example: dict[str, Any]) -> bool:
        """Learn one training example; False when its event was learned already (or the
        model raised, which is logged and counted)."""
        event_id = str(example["event_id"])
        if event_id in self.seen:
            self.duplicates += 1
            return False
        label_time = float(example.get("label_time") or 0.0)
        candidates = self.candidates
        try:
            served = served_predictions(example, candidates.ids) if self.score_served else None
            self.actions += candidates.learn(example["x"], example["label"], served)
        except Exception as exc:  # the example is skipped; learning goes on
            self.errors += 1
            log.warning("learning event %s raised: %r", event_id, exc)
            return False
        self.seen[event_id] = label_time
        heapq.heappush(self._expiry, (label_time, event_id))
        if label_time > self.watermark:
            self.watermark = label_time
            limit = label_time - self.keep_ms
            while self._expiry and self._expiry[0][0] < limit:
                _, old = heapq.heappop(self._expiry)
                self.seen.pop(old, None)
        return True

    @property
    def model(self) -> OnlineModel:
        """The champion (the candidate served)."""
        return self.candidates.models[self.candidates.champion]

    @property
    def examples(self) -> int:
        """Examples learned (each by every candidate)."""
        return self.candidates.examples

    def seen_bytes(self) -> bytes:
        """The seen-set as JSON, stored beside the model in its snapshot."""
        return orjson.dumps(self.seen)

    def load_seen(self, raw: bytes) -> None:
        self.seen = orjson.loads(raw) if raw else {}
        self._expiry = [(t, event_id) for event_id, t in self.seen.items()]
        heapq.heapify(self._expiry)
        self.watermark = max(self.seen.values(), default=float("-inf"))
