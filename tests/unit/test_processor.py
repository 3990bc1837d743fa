"""The worker's per-event logic, without Kafka: parity, isolation of bad events, metrics."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from river import base, datasets, evaluate, linear_model, metrics, preprocessing

from streamlearn.models.online import OnlineModel
from streamlearn.monitoring import metrics as sl_metrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams.processor import OutputList, PartitionProcessor, ProcessorOptions

FEATURES = {name: "numeric" for name in next(iter(datasets.Phishing()))[0]}


@dataclass
class FakeMessage:
    """The part of confluent-kafka's ``Message`` the processor reads."""

    _value: bytes | None
    _offset: int = 0
    _key: bytes | None = b"k"
    _headers: Any = None

    def value(self) -> bytes | None:
        return self._value

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def headers(self) -> Any:
        return self._headers

    def topic(self) -> str:
        return "phishing"

    def partition(self) -> int:
        return 0

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)


def make_model():
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


SPEC = Pipeline(
    name="phishing", key_field="event_id", event_id_field="event_id", features=FEATURES,
    label_field="is_phishing", label_type="boolean", model=make_model,
)


def make_processor(registry: CollectorRegistry, spec: Pipeline = SPEC,
                   model: Any = None) -> PartitionProcessor:
    online = OnlineModel(model if model is not None else spec.model())
    bound = sl_metrics.create(registry).bind(spec.name, online.name)
    return PartitionProcessor(spec, online, bound, ProcessorOptions(
        max_event_bytes=1000, clock=lambda: 1_700_000_000.5))


def phishing_events(n: int) -> list[dict]:
    rows = itertools.islice(datasets.Phishing(), n)
    return [{**x, "event_id": f"e{i}", "is_phishing": y} for i, (x, y) in enumerate(rows)]


def run(processor: PartitionProcessor, batch: list[FakeMessage]) -> OutputList:
    outputs = OutputList()
    processor.process_batch(batch, outputs)
    return outputs


def messages(events: list[Any]) -> list[FakeMessage]:
    return [FakeMessage(e if isinstance(e, bytes) else orjson.dumps(e), i)
            for i, e in enumerate(events)]


def test_served_predictions_equal_progressive_val_score():
    processor = make_processor(CollectorRegistry())
    outputs = run(processor, messages(phishing_events(1250)))
    served = [orjson.loads(o.value)["prediction"] for o in outputs
              if o.topic == "phishing.predictions"]
    labels = [y for _, y in datasets.Phishing()]
    accuracy = sum(p == y for p, y in zip(served, labels, strict=True)) / len(labels)
    reference = evaluate.progressive_val_score(datasets.Phishing(), make_model(),
                                               metrics.Accuracy()).get()
    assert accuracy == reference
    assert processor.next_offset == 1250


def test_a_bad_event_is_dead_lettered_alone_and_the_batch_goes_on():
    registry = CollectorRegistry()
    processor = make_processor(registry)
    events: list[Any] = phishing_events(41)
    events.insert(20, {**events[20], "event_id": "bad", "long_url": "abc"})
    events.insert(30, b'{"nested": ')
    events.insert(35, {**events[35], "event_id": "big", "pad": "x" * 1000})
    outputs = run(processor, messages(events))
    topics = [o.topic for o in outputs]
    assert topics.count("phishing.predictions") == 41
    dead = [o for o in outputs if o.topic == "phishing.dlq"]
    reasons = [dict(o.headers)["streamlearn.error.reason"] for o in dead]
    assert reasons == [b"bad_type", b"invalid_json", b"too_large"]
    assert b"'long_url' is declared numeric" in dict(dead[0].headers)["streamlearn.error"]
    assert dict(dead[0].headers)["streamlearn.source.offset"] == b"20"
    assert processor.model.version == 41, "every valid event was learned, no bad one"
    for reason, want in (("bad_type", 1), ("invalid_json", 1), ("too_large", 1)):
        assert registry.get_sample_value("streamlearn_dead_letters_total",
                                         {"pipeline": "phishing", "reason": reason}) == want
    assert registry.get_sample_value("streamlearn_predictions_total",
                                     {"pipeline": "phishing", "model": processor.model.name}) == 41


def test_nulls_are_absent_and_undeclared_fields_are_counted_not_learned():
    registry = CollectorRegistry()
    processor = make_processor(registry)
    event = {**phishing_events(1)[0], "long_url": None, "new_field": 7}
    out, _ = run(processor, messages([event]))
    assert out.topic == "phishing.predictions"
    assert registry.get_sample_value("streamlearn_undeclared_fields_total",
                                     {"pipeline": "phishing"}) == 1
    weights = processor.model.estimator["LogisticRegression"].weights
    assert "new_field" not in weights and "long_url" not in weights


class Fragile(base.Classifier):
    """A classifier that raises on one input, while predicting or while learning."""

    def __init__(self, when: str) -> None:
        self.when = when
        self.inner = linear_model.LogisticRegression()

    def _check(self, x: dict, when: str) -> None:
        if when == self.when and x.get("https") == 99:
            raise ValueError(f"cannot {when} https=99")

    def predict_proba_one(self, x: dict) -> dict:
        self._check(x, "predict")
        return self.inner.predict_proba_one(x)

    def learn_one(self, x: dict, y: Any) -> None:
        self._check(x, "learn")
        self.inner.learn_one(x, y)


@pytest.mark.parametrize(("when", "predicted"), [("predict", 2), ("learn", 3)])
def test_a_model_exception_dead_letters_that_event_only(when, predicted):
    processor = make_processor(CollectorRegistry(), model=Fragile(when))
    events = phishing_events(3)
    events[1] = {**events[1], "https": 99}
    outputs = run(processor, messages(events))
    predictions = [o for o in outputs if o.topic == "phishing.predictions"]
    dead = [o for o in outputs if o.topic == "phishing.dlq"]
    assert len(predictions) == predicted, "a prediction made before learning failed stands"
    assert [dict(o.headers)["streamlearn.error.reason"] for o in dead] == [b"model_error"]
    assert b"https=99" in dict(dead[0].headers)["streamlearn.error"]
    assert processor.model.version == 2


def test_prediction_carries_the_wire_format_fields():
    processor = make_processor(CollectorRegistry())
    event = phishing_events(1)[0]
    out, served = run(processor, messages([event]))
    assert out.key == b"e0"
    body = orjson.loads(out.value)
    assert set(body) == {"event_id", "key", "model", "model_version", "prediction", "proba",
                         "event_time", "predicted_at"}
    assert body["model_version"] == 0 and body["event_time"] == 1_700_000_000_000
    assert (served.topic, served.key) == ("phishing.served", b"e0")
    record = orjson.loads(served.value)
    assert set(record) == {"event_id", "key", "x", "predictions", "champion", "event_time",
                           "label", "src", "m"}
    assert record["src"] == [0, 0] and record["m"] == record["event_time"]
    assert record["x"] == {k: v for k, v in event.items() if k not in ("event_id", "is_phishing")}
    assert record["predictions"][record["champion"]] == {
        "prediction": body["prediction"], "proba": body["proba"], "model_version": 0}
    assert record["label"] is event["is_phishing"]


def test_no_score_is_exported_before_the_first_example():
    registry = CollectorRegistry()
    make_processor(registry)
    assert "streamlearn_model_score" not in {
        s.name for m in registry.collect() for s in m.samples
    }
