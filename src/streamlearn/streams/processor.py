"""Per-event logic of the predict-then-learn worker, free of Kafka clients so tests call it.

One :class:`PartitionProcessor` per input partition owns that partition's model. For each
event, in partition order: decode and check it against the spec's types (bad → a dead
letter, alone), predict, encode the prediction, then learn from the label the event carries.
Test-then-train one event at a time is what makes the served predictions equal River's
``progressive_val_score``.

An exception from the model is caught per event: while predicting, the event becomes a
``model_error`` dead letter and nothing is learned; while learning, the prediction already
produced stands and the event is *also* dead-lettered. The model is not rolled back: River
models update in place, and most fail before changing anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from streamlearn.features.offline import entity_id, read_key
from streamlearn.features.online import PartitionFeatures
from streamlearn.models.online import OnlineModel
from streamlearn.monitoring.metrics import BoundMetrics, observe_many
from streamlearn.pipeline import Pipeline
from streamlearn.schema import BadEvent, Schema, parse_time
from streamlearn.streams.records import (
    Headers,
    dead_letter_headers,
    decode_event,
    encode_prediction,
    encode_served,
)

__all__ = ["Emit", "Outgoing", "OutputList", "PartitionProcessor", "SourceMessage"]

log = logging.getLogger(__name__)


class SourceMessage(Protocol):
    """What the processor reads of a consumed record (confluent-kafka's ``Message`` fits)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Any: ...


class Emit(Protocol):
    """Where outputs go: confluent-kafka's ``Producer.produce`` fits, and so does a list."""

    def __call__(self, topic: str, value: bytes, key: bytes | None, *,
                 headers: Headers | None = None) -> None: ...


class Outgoing(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None


class OutputList(list[Outgoing]):
    """An :class:`Emit` that keeps the outputs, for tests and tools."""

    def __call__(self, topic: str, value: bytes, key: bytes | None, *,
                 headers: Headers | None = None) -> None:
        self.append(Outgoing(topic, key, value, headers))


class PartitionProcessor:
    """Predicts and learns the events of one input partition with that partition's model."""

    def __init__(
        self,
        spec: Pipeline,
        model: OnlineModel,
        metrics: BoundMetrics,
        max_event_bytes: int,
        clock: Callable[[], float] = time.time,
        features: PartitionFeatures | None = None,
    ) -> None:
        self.spec = spec
        self.model = model
        self.metrics = metrics
        self.max_event_bytes = max_event_bytes
        self.clock = clock
        self.features = features if spec.feature_set else None
        """The partition's derived-feature state (None when the spec declares none)."""
        self.schema: Schema = spec.schema()
        self.predictions_topic = spec.predictions_topic
        self.served_topic = spec.served_topic
        self.next_offset: int | None = None
        """The offset after the last event processed: where the model's knowledge ends."""

    def process_batch(self, messages: list[SourceMessage], emit: Emit) -> None:
        """Emit a batch's outputs in input order; metrics move once per batch (each inc locks).

        Outputs go straight to ``emit`` (the producer), not through a list: at ~30 µs per
        event, every object per event shows.
        """
        learned_before = self.model.version
        self._emit = emit
        self._predicted = 0
        self._undeclared = 0
        self._latencies: list[float] = []
        process = self._process
        for message in messages:
            process(message)
        if messages:
            self.next_offset = (messages[-1].offset() or 0) + 1
        m = self.metrics
        m.events.inc(len(messages))
        m.predictions.inc(self._predicted)
        m.examples_learned.inc(self.model.version - learned_before)
        m.batch_size.observe(len(messages))
        observe_many(m.event_to_prediction, self._latencies)
        if self._undeclared:
            m.undeclared_fields.inc(self._undeclared)
        if self.features is not None:
            m.count_features(self.features)

    def _process(self, message: SourceMessage) -> None:
        try:
            event = decode_event(message.value(), self.max_event_bytes)
            x, y, undeclared = self.schema.check(event)
            key = read_key(event, self.spec.key_field)
            event_time = self._event_time(event, message)
            if self.features is not None:
                derived = self.features.values(event, x, entity_id(key), event_time,
                                               message.offset())
                if derived:
                    x = {**x, **derived}
        except BadEvent as error:
            self._dead_letter(message, error)
            return
        self._undeclared += undeclared
        model = self.model
        now = self.clock()
        event_id = self._event_id(event, message)
        try:
            prediction, proba = model.predict(x)
            # Inside the try: a model may answer with a label JSON cannot carry.
            value = encode_prediction(
                event_id, key, model.name, model.version, prediction, proba, event_time,
                int(now * 1000),
            )
            served = encode_served(
                event_id, key, x, model.name, model.version, prediction, proba, event_time,
                *((y,) if self.schema.label is not None else ()),
            )
        except Exception as exc:
            self._dead_letter(message, _model_error("predicting", exc))
            return
        key_bytes = _key_bytes(key)
        self._emit(self.predictions_topic, value, key_bytes)
        self._emit(self.served_topic, served, event_id.encode())
        self._predicted += 1
        self._latencies.append(max(0.0, now - message.timestamp()[1] / 1000))
        if self.schema.label is not None:
            try:
                model.learn(x, y, served=prediction)
            except Exception as exc:
                self._dead_letter(message, _model_error("learning", exc))

    def _event_time(self, event: dict[str, Any], message: SourceMessage) -> Any:
        """Epoch ms: the time field's (a number, or ISO-8601), else the record timestamp."""
        field = self.spec.time_field
        if not field:
            return message.timestamp()[1]
        t = parse_time(event.get(field), field)
        return int(t) if t.is_integer() else t

    def _event_id(self, event: dict[str, Any], message: SourceMessage) -> str:
        field = self.spec.event_id_field
        if field and event.get(field) is not None:
            return str(event[field])
        return f"{message.topic()}-{message.partition()}-{message.offset()}"

    def _dead_letter(self, message: SourceMessage, error: BadEvent) -> None:
        self.metrics.dead_letters[error.reason].inc()
        topic, partition, offset = message.topic() or "", message.partition(), message.offset()
        log.warning("dead letter %s[%s]@%s: %s", topic, partition, offset, error)
        headers = dead_letter_headers(
            topic, partition or 0, offset or 0, error, _header_list(message.headers())
        )
        self._emit(self.spec.dlq_topic, message.value() or b"", message.key(), headers=headers)


def _model_error(when: str, exc: Exception) -> BadEvent:
    return BadEvent("model_error", f"the model raised while {when}: {exc!r}")


def _key_bytes(key: Any) -> bytes:
    return key.encode() if isinstance(key, str) else str(key).encode()


def _header_list(headers: Any) -> list[tuple[str, bytes]]:
    if not headers:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(k), v if isinstance(v, bytes) else str(v or "").encode()) for k, v in items]
