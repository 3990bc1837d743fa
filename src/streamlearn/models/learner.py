"""The global learner's per-example logic: one model, every partition's examples, in the
order of ``<name>.training``; nothing here knows Kafka (``streams.learner`` does).

Each example is the served record joined with its label: the learner scores the prediction
that was served (prequential with delay), then learns from the features as served, never
recomputed later. The training topic is written at least once (a label join replays after a
crash), so the learner keeps the ids it learned, for twice the label TTL of event time, and
skips a second copy: a duplicate never makes the model learn twice.

>>> from river import linear_model
>>> learner = Learner(OnlineModel(linear_model.LogisticRegression()), ttl_ms=60_000)
>>> example = {"event_id": "e1", "x": {"a": 1.0}, "label": True, "label_time": 5,
...            "champion": "m", "predictions": {"m": {"prediction": False}}}
>>> learner.learn(example), learner.learn(example), learner.model.version
(True, False, 1)
"""

from __future__ import annotations

import heapq
import logging
from typing import Any

import orjson

from streamlearn.models.online import OnlineModel

__all__ = ["Learner", "served_prediction"]

log = logging.getLogger(__name__)


def served_prediction(example: dict[str, Any]) -> Any:
    """The champion's prediction in a served record (None if it made none)."""
    champion = example.get("champion")
    return (example.get("predictions") or {}).get(champion, {}).get("prediction")


class Learner:
    """Deduplicates by event id, scores, learns; ``seen`` is bounded by the label TTL."""

    def __init__(self, model: OnlineModel, ttl_ms: float) -> None:
        self.model = model
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
        try:
            self.model.learn(example["x"], example["label"], served=served_prediction(example))
        except Exception as exc:  # the example is skipped; learning goes on
            self.errors += 1
            log.warning("the model raised while learning event %s: %r", event_id, exc)
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

    def seen_bytes(self) -> bytes:
        """The seen-set as JSON, stored beside the model in its snapshot."""
        return orjson.dumps(self.seen)

    def load_seen(self, raw: bytes) -> None:
        self.seen = orjson.loads(raw) if raw else {}
        self._expiry = [(t, event_id) for event_id, t in self.seen.items()]
        heapq.heapify(self._expiry)
        self.watermark = max(self.seen.values(), default=float("-inf"))
