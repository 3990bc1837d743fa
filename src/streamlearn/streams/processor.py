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

Beside it: ``messages`` (what it reads and where outputs go), ``processor_options`` (what it
is built with, per mode), ``served_drift`` (drift events and gauges of what it serves) and
``dead_letters`` (the record a bad event becomes).
"""

from __future__ import annotations

from typing import Any

import orjson

from streamlearn.features.offline import entity_id, read_key
from streamlearn.kafka.records import decode_event, encode_prediction, encode_served
from streamlearn.models.online import OnlineModel, PredictorState
from streamlearn.monitoring.metrics import PipelineMetrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.spec.schema import BadEvent, Schema, parse_time
from streamlearn.streams.dead_letters import dead_letter, model_error
from streamlearn.streams.merge import NEVER
from streamlearn.streams.messages import Emit, Outgoing, OutputList, SourceMessage
from streamlearn.streams.processor_options import ProcessorOptions, Serving
from streamlearn.streams.served_drift import ServedDrift, data_drift_watch

# Emit, Outgoing, OutputList, Serving, SourceMessage and dead_letter were defined here once:
# they stay importable from here.
__all__ = [
    "Emit", "Outgoing", "OutputList", "PartitionProcessor", "ProcessorOptions", "Serving",
    "SourceMessage", "dead_letter",
]


class PartitionProcessor:
    """Runs one input partition's events through one stage of the pipeline.

    The last stage (usually the only one) predicts and learns with the partition's model.
    An earlier stage, there when features are declared ``by`` another field, computes its
    entity's features and forwards each event, re-keyed by the next stage's field, to that
    stage's topic (``<name>.by-<field>``).
    """

    def __init__(self, spec: Pipeline, model: OnlineModel | None, metrics: PipelineMetrics,
                 options: ProcessorOptions) -> None:
        self.spec = spec
        self.stage = options.stage or spec.stages[0]
        self.serving: Serving | None = options.serving
        self.learns = self.serving is None
        """False under global learning: the learner learns, this partition only predicts."""
        self.model = self.serving.model if self.serving is not None else model
        """The partition's model (global learning: the one served); None when forwarding."""
        self.predictor_state = options.predictor_state or PredictorState()
        """Global learning: what this partition checkpoints (its data-drift state)."""
        self.metrics = metrics.partitions
        self.max_event_bytes = options.max_event_bytes
        self.clock = options.clock
        self.features = options.features
        """The partition's derived-feature state (None when the stage needs none)."""
        self._compute = self.features is not None and bool(self.features.fs)
        self.schema: Schema = spec.schema()
        self.predictions_topic = spec.predictions_topic
        self.served_topic = spec.served_topic
        self._later = [s.entity_field for s in spec.stages[1:]] if self.stage.index == 0 else []
        self._next = self.stage.next_field
        self._next_topic = spec.stages[self.stage.index + 1].topic if self._next else ""
        self.stage_partition = 0
        """The input partition (positions of data drift are its offsets)."""
        self._origin: tuple[int, int] = (0, 0)
        self.drift = drift = options.drift
        if model is not None and self.learns and not drift.enabled:
            model.concept = None  # restored from a snapshot made with detection on
        holder = model if self.learns else self.predictor_state
        self.data_drift = (data_drift_watch(spec, self.schema, drift, self.model, holder)
                           if self.model is not None and holder is not None and drift.enabled
                           else None)
        if self.data_drift is not None:  # bound once: they run per event
            watches = self.data_drift.watches
            self._note_prediction = watches["prediction"].sample.append
            if "label" in watches:
                self._note_label = watches["label"].sample.append
        self.served_drift = ServedDrift(spec, drift, metrics.drift, self.data_drift, self.learns)
        self._dead_letters = self.metrics.dead_letters
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
        self.served_drift.start_batch(emit, self.model, self.stage_partition)
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
            m.latency.observe_batch(self._latencies)
        if self._undeclared:
            m.undeclared_fields.inc(self._undeclared)
        if self.features is not None:
            m.count_features(self.features, self.stage.entity_field)
        if self.model is not None and messages:
            self.served_drift.end_batch(self.model)

    def checkpoint_payload(self) -> OnlineModel | PredictorState:
        """What the partition's snapshot holds: its model, or (global learning) its state."""
        assert self.model is not None
        self.predictor_state.merge_time = self.merge_time
        return self.model if self.learns else self.predictor_state

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
            self._dead_letter(message, model_error("predicting", exc), event)
            return
        self._emit(self.predictions_topic, value, _key_bytes(key))
        self._emit(self.served_topic, served, event_id.encode())
        self._predicted += 1
        self._latencies.append(max(0.0, now - sent_at / 1000))
        watch = self.data_drift
        if watch is not None:
            offset = message.offset()
            for feature, signal in watch.observe(x, offset or 0):
                self.served_drift.event("data", feature, signal, event_time, offset)
            if prediction is not None:
                self._note_prediction(prediction)
            if self.schema.label is not None:
                self._note_label(y)
            if watch.index_due(self.drift.psi_every):
                self.served_drift.stability(event_time, offset)
        if self.schema.label is not None:
            if not self.learns:  # the label rides in the served record to the learner
                return
            try:
                model.learn(x, y, served=prediction, proba=proba)
            except Exception as exc:
                self._dead_letter(message, model_error("learning", exc), event)
            if model.signals:
                for signal in model.signals:
                    self.served_drift.event("concept", "", signal, event_time, message.offset())
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
            dead_letter(self.spec, self._dead_letters, message, error, self._emit,
                        origin=(self.spec.events_topic, *self._origin),
                        value=orjson.dumps(event))
        else:
            dead_letter(self.spec, self._dead_letters, message, error, self._emit)


def _forwarded(raw: bytes | None) -> dict[str, Any]:
    try:
        record = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise BadEvent("invalid_json", f"not a forwarded event: {exc}") from None
    if type(record) is not dict or "src" not in record:
        raise BadEvent("not_object", "not a forwarded event")
    return record


def _key_bytes(key: Any) -> bytes:
    return key.encode() if isinstance(key, str) else str(key).encode()
