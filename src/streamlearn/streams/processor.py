"""Per-event logic of the predict-then-learn worker, free of faust so tests call it directly.

For each event: decode (bad → dead letter), build features, predict, encode the prediction,
then learn from the label the event carries. Test-then-train, one event at a time and in
partition order, is what makes the served predictions equal River's
``progressive_val_score``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from streamlearn.models.online import OnlineModel
from streamlearn.monitoring.metrics import BoundMetrics
from streamlearn.pipeline import Pipeline
from streamlearn.streams.records import (
    BadEvent,
    Headers,
    dead_letter_headers,
    decode_event,
    encode_prediction,
    features,
)

__all__ = ["EventProcessor", "Outgoing", "SourceMessage"]

log = logging.getLogger(__name__)


class SourceMessage(Protocol):
    """What the processor reads of a consumed record (faust's ``Message`` fits)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None
    headers: Any


class Outgoing(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None


class EventProcessor:
    def __init__(
        self,
        spec: Pipeline,
        model: OnlineModel,
        metrics: BoundMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.model = model
        self.metrics = metrics
        self.clock = clock

    def process_batch(self, messages: list[SourceMessage]) -> list[Outgoing]:
        """Outputs for a batch, in input order; counters move once per batch (each inc locks)."""
        learned_before = self.model.version
        out = [self.process(m) for m in messages]
        m: BoundMetrics = self.metrics
        dead = sum(1 for o in out if o.topic == self.spec.dlq_topic)
        m.events.inc(len(messages))
        m.predictions.inc(len(messages) - dead)
        m.examples_learned.inc(self.model.version - learned_before)
        m.batch_size.observe(len(messages))
        m.score.set(self.model.score.get())
        m.rolling_score.set(self.model.rolling_score.get())
        return out

    def process(self, message: SourceMessage) -> Outgoing:
        try:
            event = decode_event(message.value, self.spec)
        except BadEvent as error:
            return self._dead_letter(message, error)
        spec, model = self.spec, self.model
        x = features(event, spec)
        prediction, proba = model.predict(x)
        now = self.clock()
        key = event[spec.key_field]
        value = encode_prediction(
            event_id=self._event_id(event, message),
            key=key,
            model=model.name,
            model_version=model.version,
            prediction=prediction,
            proba=proba,
            event_time=event[spec.time_field] if spec.time_field else int(message.timestamp * 1000),
            predicted_at=int(now * 1000),
        )
        self.metrics.event_to_prediction.observe(max(0.0, now - message.timestamp))
        if spec.label_field:
            model.learn(x, event[spec.label_field], served=prediction)
        return Outgoing(spec.predictions_topic, _key_bytes(key), value, None)

    def _event_id(self, event: dict[str, Any], message: SourceMessage) -> str:
        if self.spec.event_id_field and self.spec.event_id_field in event:
            return str(event[self.spec.event_id_field])
        return f"{message.topic}-{message.partition}-{message.offset}"

    def _dead_letter(self, message: SourceMessage, error: BadEvent) -> Outgoing:
        self.metrics.dead_letters[error.reason].inc()
        log.warning(
            "dead letter %s[%d]@%d: %s", message.topic, message.partition, message.offset, error
        )
        headers = dead_letter_headers(
            message.topic, message.partition, message.offset, error, _header_list(message.headers)
        )
        return Outgoing(self.spec.dlq_topic, message.key, message.value or b"", headers)


def _key_bytes(key: Any) -> bytes:
    return key.encode() if isinstance(key, str) else str(key).encode()


def _header_list(headers: Any) -> list[tuple[str, bytes]]:
    if not headers:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(k), v if isinstance(v, bytes) else str(v).encode()) for k, v in items]
