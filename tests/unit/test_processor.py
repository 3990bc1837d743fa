"""The worker's per-event logic, without Kafka: parity with River, dead letters, metrics."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from river import datasets, linear_model, preprocessing

from streamlearn.models.online import OnlineModel
from streamlearn.monitoring import metrics
from streamlearn.pipeline import Pipeline
from streamlearn.streams.processor import EventProcessor


@dataclass
class FakeMessage:
    value: bytes | None
    offset: int = 0
    topic: str = "phishing"
    partition: int = 0
    timestamp: float = 1_700_000_000.0
    key: bytes | None = b"k"
    headers: Any = None


def make_model():
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


SPEC = Pipeline(
    name="phishing", key_field="event_id", event_id_field="event_id",
    label_field="is_phishing", model=make_model,
)


def make_processor(registry: CollectorRegistry) -> EventProcessor:
    model = OnlineModel(SPEC.model())
    return EventProcessor(SPEC, model, metrics.create(registry).bind(SPEC.name, model.name),
                          clock=lambda: 1_700_000_000.5)


def phishing_messages(n: int) -> list[FakeMessage]:
    rows = itertools.islice(datasets.Phishing(), n)
    return [
        FakeMessage(orjson.dumps({**x, "event_id": f"e{i}", "is_phishing": y}), offset=i)
        for i, (x, y) in enumerate(rows)
    ]


def test_served_predictions_equal_river_test_then_train():
    processor = make_processor(CollectorRegistry())
    outputs = processor.process_batch(phishing_messages(300))
    served = [orjson.loads(o.value)["prediction"] for o in outputs]
    reference, model = [], make_model()
    for x, y in itertools.islice(datasets.Phishing(), 300):
        reference.append(model.predict_one(x))
        model.learn_one(x, y)
    assert served == reference


def test_prediction_carries_the_wire_format_fields():
    processor = make_processor(CollectorRegistry())
    out = processor.process(phishing_messages(1)[0])
    assert out.topic == "phishing.predictions"
    assert out.key == b"e0"
    record = orjson.loads(out.value)
    assert list(record) == ["event_id", "key", "model", "model_version", "prediction", "proba",
                            "event_time", "predicted_at"]
    assert record["event_id"] == "e0"
    assert record["model"] == "StandardScaler | LogisticRegression"
    assert record["model_version"] == 0
    assert record["event_time"] == 1_700_000_000_000
    assert set(record["proba"]) == {"false", "true"}


def test_bad_events_become_dead_letters_and_the_next_event_still_works():
    registry = CollectorRegistry()
    processor = make_processor(registry)
    bad = [
        FakeMessage(b"{not json", offset=1, headers=[("trace", b"t1")]),
        FakeMessage(b"[1, 2]", offset=2),
        FakeMessage(b'{"is_phishing": true}', offset=3),
        FakeMessage(None, offset=4),
    ]
    good = phishing_messages(1)[0]
    outputs = processor.process_batch([*bad, good])
    for message, out in zip(bad, outputs, strict=False):
        assert out.topic == "phishing.dlq"
        assert out.value == (message.value or b"")
        headers = dict(out.headers or [])
        assert headers["streamlearn.source.offset"] == str(message.offset).encode()
        assert headers["streamlearn.source.topic"] == b"phishing"
        assert headers["streamlearn.error"]
    assert dict(outputs[0].headers or [])["trace"] == b"t1", "original headers are kept"
    assert outputs[-1].topic == "phishing.predictions"

    def dead(reason: str) -> float | None:
        return registry.get_sample_value(
            "streamlearn_dead_letters_total", {"pipeline": "phishing", "reason": reason}
        )

    assert (dead("invalid_json"), dead("not_object"), dead("missing_field")) == (2.0, 1.0, 1.0)
    assert registry.get_sample_value("streamlearn_events_total", {"pipeline": "phishing"}) == 5.0
    model = {"pipeline": "phishing", "model": processor.model.name}
    assert registry.get_sample_value("streamlearn_predictions_total", model) == 1.0
    assert registry.get_sample_value("streamlearn_examples_learned_total", model) == 1.0


def test_score_gauge_tracks_prequential_accuracy():
    registry = CollectorRegistry()
    processor = make_processor(registry)
    processor.process_batch(phishing_messages(200))
    labels = {"pipeline": "phishing", "model": processor.model.name, "metric": "accuracy"}
    score = registry.get_sample_value("streamlearn_model_score", labels)
    assert score == processor.model.score.get()
    assert 0.5 < score <= 1.0
