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

import orjson

from streamlearn.features.offline import entity_id, read_key
from streamlearn.features.online import PartitionFeatures
from streamlearn.features.stages import Stage
from streamlearn.kafka.records import (
    Headers,
    dead_letter_headers,
    decode_event,
    encode_prediction,
    encode_served,
)
from streamlearn.models.data_drift import DataDrift
from streamlearn.models.drift import DriftOptions, DriftSignal
from streamlearn.models.online import OnlineModel, PredictorState
from streamlearn.monitoring.metrics import BoundMetrics, observe_many
from streamlearn.spec.pipeline import Pipeline
from streamlearn.spec.schema import NUMERIC, BadEvent, Schema, parse_time
from streamlearn.streams.merge import NEVER
from streamlearn.streams.serving import Served

__all__ = [
    "Emit", "Outgoing", "OutputList", "PartitionProcessor", "Serving", "SourceMessage",
    "dead_letter",
]

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


class Serving(Protocol):
    """Where a predictor takes its model under global learning: the newest snapshot read
    (``streams.serving.ModelFollower``); swapped between batches, never during one."""

    @property
    def model(self) -> OnlineModel: ...

    @property
    def current(self) -> Served: ...


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
    """Runs one input partition's events through one stage of the pipeline.

    The last stage (usually the only one) predicts and learns with the partition's model.
    An earlier stage, there when features are declared ``by`` another field, computes its
    entity's features and forwards each event, re-keyed by the next stage's field, to that
    stage's topic (``<name>.by-<field>``).
    """

    def __init__(
        self,
        spec: Pipeline,
        model: OnlineModel | None,
        metrics: BoundMetrics,
        max_event_bytes: int,
        clock: Callable[[], float] = time.time,
        features: PartitionFeatures | None = None,
        stage: Stage | None = None,
        drift: DriftOptions = DriftOptions(),  # noqa: B008 (frozen)
        serving: Serving | None = None,
        predictor_state: PredictorState | None = None,
    ) -> None:
        self.spec = spec
        self.stage = stage or spec.stages[0]
        self.serving = serving
        self.learns = serving is None
        """False under global learning: the learner learns, this partition only predicts."""
        self.model = serving.model if serving is not None else model
        """The partition's model (global learning: the one served); None when forwarding."""
        self.predictor_state = predictor_state or PredictorState()
        """Global learning: what this partition checkpoints (its data-drift state)."""
        self.metrics = metrics
        self.max_event_bytes = max_event_bytes
        self.clock = clock
        self.features = features
        """The partition's derived-feature state (None when the stage needs none)."""
        self._compute = features is not None and bool(features.fs)
        self.schema: Schema = spec.schema()
        self.predictions_topic = spec.predictions_topic
        self.served_topic = spec.served_topic
        self._later = [s.entity_field for s in spec.stages[1:]] if self.stage.index == 0 else []
        self._next = self.stage.next_field
        self._next_topic = spec.stages[self.stage.index + 1].topic if self._next else ""
        self.stage_partition = 0
        """The input partition (positions of data drift are its offsets)."""
        self._origin: tuple[int, int] = (0, 0)
        self.drift = drift
        self.drift_topic = spec.drift_topic
        if model is not None and self.learns and not drift.enabled:
            model.concept = None  # restored from a snapshot made with detection on
        holder = model if self.learns else self.predictor_state
        self.data_drift = (self._data_drift(holder)
                           if self.model is not None and holder is not None and drift.enabled
                           else None)
        if self.data_drift is not None:  # bound once: they run per event
            watches = self.data_drift.watches
            self._note_prediction = watches["prediction"].sample.append
            if "label" in watches:
                self._note_label = watches["label"].sample.append
        self._psi_high: set[str] = set()
        self._instance: str | None = None
        self._shadows: tuple[tuple[str, str, OnlineModel], ...] = ()
        self.next_offset: int | None = None
        """The offset after the last event processed: where the model's knowledge ends."""
        self._position = 0
        """The position of the event being processed (its offset, unless merged)."""
        self.merge_time: float = getattr(self.predictor_state, "merge_time", NEVER)
        """The partition's event time so far (a running maximum): the merge time of its
        served records (``streams.merge``); checkpointed under global learning."""

    def process_batch(self, messages: list[SourceMessage], emit: Emit,
                      first_position: int | None = None) -> None:
        """Emit a batch's outputs in input order; metrics move once per batch (each inc locks).

        Outputs go straight to ``emit`` (the producer), not through a list: at ~30 µs per
        event, every object per event shows. ``first_position``: the messages come from a
        merge of several sources (a re-keyed stage), so their offsets do not grow in the
        order they are processed; their positions are ``first_position``, +1, ... instead.
        """
        if self.serving is not None:  # the newest snapshot read, for the whole batch
            current = self.serving.current
            self.model, self._instance, self._shadows = (current.model, current.instance,
                                                         current.shadows)
        learned_before = self.model.version if self.model else 0
        self._emit = emit
        self._predicted = 0
        self._undeclared = 0
        self._latencies: list[float] = []
        process = self._process
        if first_position is None:
            for message in messages:
                self._position = message.offset() or 0
                process(message)
        else:
            for position, message in enumerate(messages, first_position):
                self._position = position
                process(message)
        if messages:
            self.next_offset = (messages[-1].offset() or 0) + 1
        m = self.metrics
        if self.stage.index == 0:
            m.events.inc(len(messages))
            m.batch_size.observe(len(messages))
        if self.model is not None:
            m.predictions.inc(self._predicted)
            m.examples_learned.inc(self.model.version - learned_before)
            observe_many(m.event_to_prediction, self._latencies)
        if self._undeclared:
            m.undeclared_fields.inc(self._undeclared)
        if self.features is not None:
            m.count_features(self.features, self.stage.entity_field)
        if self.model is not None and messages:
            self._drift_gauges(self.model)

    def checkpoint_payload(self) -> OnlineModel | PredictorState:
        """What the partition's snapshot holds: its model, or (global learning) its state."""
        assert self.model is not None
        self.predictor_state.merge_time = self.merge_time
        return self.model if self.learns else self.predictor_state

    # -- drift -----------------------------------------------------------------------------

    def _data_drift(self, model: OnlineModel | PredictorState) -> DataDrift:
        """The partition's data-drift state: it travels in the partition's snapshot (of its
        model, or under global learning of its :class:`PredictorState`)."""
        if model.data_drift is None:
            watch = DataDrift(dict(self.spec.features or {}), self.drift.reference_events,
                              adwin_delta=self.drift.adwin_delta)
            assert self.model is not None
            watch.add("prediction", not self.model.is_classifier, "prediction")
            if self.schema.label is not None:
                watch.add("label", self.schema.label[1] == NUMERIC, "label")
            model.data_drift = watch
        return model.data_drift

    def _drift_event(self, kind: str, feature: str, signal: DriftSignal, event_time: Any,
                     offset: int | None) -> None:
        """A drift signal as a metric, a log line and a record on ``<name>.drift``."""
        model = self.model
        assert model is not None
        self.metrics.count_drift(kind, signal.detector, feature, signal.level)
        record: dict[str, Any] = {
            "model": model.name, "kind": kind, "detector": signal.detector,
            "level": signal.level, "statistic": signal.statistic,
            "at_example": signal.position if kind == "concept" else model.version,
            "at_time": event_time, "partition": self.stage_partition, "action": "alert",
        }
        if kind != "concept":
            record["feature"] = feature
            record["at_offset"] = offset
        log.warning("%s %s (%s%s) at %s %s: %.4g", kind, signal.level, signal.detector,
                    f" on {feature}" if feature else "", "example" if kind == "concept" else
                    "offset", record["at_example"] if kind == "concept" else offset,
                    signal.statistic)
        self._emit(self.drift_topic, orjson.dumps(record), model.name.encode())

    def _drift_gauges(self, model: OnlineModel) -> None:
        """ADWIN's estimates, once per batch; the batch's values binned (numpy)."""
        m, p = self.metrics, self.stage_partition
        if self.learns and model.version and model.concept is not None:
            m.set_drift_estimate("concept", "ADWIN", "", p, model.concept.estimate)
        if self.data_drift is not None:
            self.data_drift.end_batch()
            for feature, value in self.data_drift.estimates().items():
                m.set_drift_estimate("data", "ADWIN", feature, p, value)

    def _stability(self, event_time: Any, position: int | None) -> None:
        """Each field's stability index since the last one; above the threshold, an event.

        Every ``STREAMLEARN_DRIFT_PSI_EVERY`` events of the partition, right after the event
        that completes them: a function of the log, like every other state change.
        """
        assert self.data_drift is not None
        threshold = self.drift.psi_threshold
        for feature, value in self.data_drift.stability().items():
            kind = self.data_drift.watches[feature].kind
            self.metrics.set_stability(kind, feature, self.stage_partition, value)
            if value > threshold and feature not in self._psi_high:
                signal = DriftSignal("PSI", "drift", self.model.version if self.model else 0,
                                     value)
                self._drift_event(kind, feature, signal, event_time, position)
                self._psi_high.add(feature)
            elif value <= threshold:
                self._psi_high.discard(feature)

    def _process(self, message: SourceMessage) -> None:
        try:
            if self.stage.index == 0:
                event = decode_event(message.value(), self.max_event_bytes)
                x, y, undeclared = self.schema.check(event)
                key = entity = read_key(event, self.spec.key_field)
                for field in self._later:  # a missing entity is a dead letter here, not later
                    read_key(event, field)
                event_time = self._event_time(event, message)
                event_id = self._event_id(event, message)
                sent_at = message.timestamp()[1]
                self._origin = (message.partition() or 0, message.offset() or 0)
            else:
                forwarded = _forwarded(message.value())
                assert self.features is not None  # a re-keyed stage always has its state
                if not self.features.first_time(*forwarded["src"]):
                    return  # a copy its router replayed after a crash: already served
                event, x, y, key = (forwarded["event"], forwarded["x"], forwarded.get("y"),
                                    forwarded["key"])
                event_time, event_id, sent_at = forwarded["t"], forwarded["id"], forwarded["ts"]
                self._origin = tuple(forwarded["origin"])
                entity = event[self.stage.entity_field]
                undeclared = 0
            if self._compute:
                assert self.features is not None
                derived = self.features.values(event, x, entity_id(entity), event_time,
                                               self._position)
                if derived:
                    x = {**x, **derived}
        except BadEvent as error:
            self._dead_letter(message, error)
            return
        self._undeclared += undeclared
        if self._next:
            if event_time > self.merge_time:
                self.merge_time = event_time
            record = {"event": event, "x": x, "key": key, "t": event_time, "id": event_id,
                      "ts": sent_at, "src": [self.stage_partition, self._position],
                      "m": self.merge_time, "origin": self._origin}
            if self.schema.label is not None:
                record["y"] = y
            self._emit(self._next_topic, orjson.dumps(record),
                       entity_id(event[self._next]).encode())
            return
        self._predict(message, event, x, y, key, event_id, event_time, sent_at)

    def _predict(self, message: SourceMessage, event: dict[str, Any], x: dict[str, Any],
                 y: Any, key: Any, event_id: str, event_time: Any, sent_at: int) -> None:
        model = self.model
        assert model is not None
        now = self.clock()
        if event_time > self.merge_time:
            self.merge_time = event_time
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
                instance=self._instance,
                shadows=self._shadow_predictions(x) if self._shadows else None,
                source=(self.stage_partition, self._position), m=self.merge_time,
            )
        except Exception as exc:
            self._dead_letter(message, _model_error("predicting", exc), event)
            return
        self._emit(self.predictions_topic, value, _key_bytes(key))
        self._emit(self.served_topic, served, event_id.encode())
        self._predicted += 1
        self._latencies.append(max(0.0, now - sent_at / 1000))
        watch = self.data_drift
        if watch is not None:
            offset = message.offset()
            for feature, signal in watch.observe(x, offset or 0):
                self._drift_event("data", feature, signal, event_time, offset)
            if prediction is not None:
                self._note_prediction(prediction)
            if self.schema.label is not None:
                self._note_label(y)
            if watch.index_due(self.drift.psi_every):
                self._stability(event_time, offset)
        if self.schema.label is not None:
            if not self.learns:  # the label rides in the served record to the learner
                return
            try:
                model.learn(x, y, served=prediction)
            except Exception as exc:
                self._dead_letter(message, _model_error("learning", exc), event)
            if model.signals:
                for signal in model.signals:
                    self._drift_event("concept", "", signal, event_time, message.offset())
                model.signals.clear()

    def _shadow_predictions(self, x: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The other candidates' predictions for the served record (not the predictions
        topic); a shadow that raises is left out, the event is still served."""
        out = {}
        for name, instance, shadow in self._shadows:
            try:
                prediction, proba = shadow.predict(x)
            except Exception:  # a shadow's failure is its own: it is scored as no prediction
                continue
            out[name] = {"prediction": prediction, "proba": proba,
                         "model_version": shadow.version, "instance": instance}
        return out

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

    def _dead_letter(self, message: SourceMessage, error: BadEvent,
                     event: dict[str, Any] | None = None) -> None:
        """The event to ``<name>.dlq``; from a re-keyed stage, as JSON with its origin."""
        if self.stage.index and event is not None:
            dead_letter(self.spec, self.metrics, message, error, self._emit,
                        origin=(self.spec.events_topic, *self._origin),
                        value=orjson.dumps(event))
        else:
            dead_letter(self.spec, self.metrics, message, error, self._emit)


def dead_letter(spec: Pipeline, metrics: BoundMetrics, message: SourceMessage, error: BadEvent,
                emit: Emit, origin: tuple[str, int, int] | None = None,
                value: bytes | None = None) -> None:
    """A record to ``<name>.dlq`` with the reason; ``origin``/``value`` replace the record's
    own position and bytes (an event forwarded by an earlier stage)."""
    metrics.dead_letters[error.reason].inc()
    topic, partition, offset = message.topic() or "", message.partition(), message.offset()
    original = message.headers()
    if origin is not None:
        (topic, partition, offset), original = origin, None
    log.warning("dead letter %s[%s]@%s: %s", topic, partition, offset, error)
    headers = dead_letter_headers(topic, partition or 0, offset or 0, error,
                                  _header_list(original))
    emit(spec.dlq_topic, value if value is not None else message.value() or b"",
         message.key(), headers=headers)


def _forwarded(raw: bytes | None) -> dict[str, Any]:
    try:
        record = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise BadEvent("invalid_json", f"not a forwarded event: {exc}") from None
    if type(record) is not dict or "src" not in record:
        raise BadEvent("not_object", "not a forwarded event")
    return record


def _model_error(when: str, exc: Exception) -> BadEvent:
    return BadEvent("model_error", f"the model raised while {when}: {exc!r}")


def _key_bytes(key: Any) -> bytes:
    return key.encode() if isinstance(key, str) else str(key).encode()


def _header_list(headers: Any) -> list[tuple[str, bytes]]:
    if not headers:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(k), v if isinstance(v, bytes) else str(v or "").encode()) for k, v in items]
