"""The label join between Kafka records and examples, and the global learner's dedup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from river import linear_model

from streamlearn.models.candidates import Candidates
from streamlearn.models.learner import Learner
from streamlearn.monitoring import metrics as sl_metrics
from streamlearn.pipeline import Pipeline
from streamlearn.streams.join import JoinProcessor
from streamlearn.streams.processor import OutputList

SPEC = Pipeline(name="p", key_field="k", event_id_field="id", features={"a": "numeric"},
                label_type="boolean", partitions=2, label_ttl="1m", model=dict)


@dataclass
class Record:
    _topic: str
    _value: bytes
    _offset: int
    _timestamp: int = 0

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 1

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp)

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self._value

    def headers(self) -> Any:
        return None


def served(event_id: str, t: int, offset: int, **extra: Any) -> Record:
    record = {"event_id": event_id, "key": "k", "x": {"a": 1.0}, "champion": "m",
              "predictions": {"m": {"prediction": False, "proba": None, "model_version": 0}},
              "event_time": t, **extra}
    return Record(SPEC.served_topic, orjson.dumps(record), offset)


def label(event_id: str, value: Any, offset: int, t: int | None = None) -> Record:
    record = {"event_id": event_id, "label": value, **({"time": t} if t is not None else {})}
    return Record(SPEC.labels_topic, orjson.dumps(record), offset, _timestamp=7_000)


def processor() -> tuple[JoinProcessor, CollectorRegistry]:
    registry = CollectorRegistry()
    bound = sl_metrics.create(registry).bind(SPEC.name, "m")
    return JoinProcessor(SPEC, 1, bound, max_event_bytes=1000), registry


def test_either_side_first_joins_once_and_bad_labels_are_dead_letters():
    join, registry = processor()
    out = OutputList()
    join.process_batch([
        served("e1", 1_000, 0),
        label("e2", True, 0, t=1_500),  # before its served record
        label("e1", True, 1, t=2_000),
        served("e2", 1_200, 1),
        label("e1", False, 2, t=2_500),  # a second label: counted, never learned
        Record(SPEC.labels_topic, b"{oops", 3),
        Record(SPEC.labels_topic, b'{"event_id": "e3", "label": 3}', 4),
        served("e4", 1_300, 2, label=True),  # the label rode in the event
    ], out)
    examples = [orjson.loads(o.value) for o in out if o.topic == SPEC.training_topic]
    assert [(e["event_id"], e["label"], e["label_time"]) for e in examples] == [
        ("e1", True, 2_000), ("e2", True, 1_500), ("e4", True, 1_300)]
    assert "label" not in examples[0]["x"] and examples[0]["x"] == {"a": 1.0}
    dead = [dict(o.headers or [])["streamlearn.error.reason"] for o in out
            if o.topic == SPEC.dlq_topic]
    assert dead == [b"invalid_json", b"bad_type"]
    get = registry.get_sample_value
    assert get("streamlearn_labels_total", {"pipeline": "p", "outcome": "joined"}) == 3
    assert get("streamlearn_labels_total", {"pipeline": "p", "outcome": "duplicate"}) == 1
    assert join.offsets == {SPEC.served_topic: 3, SPEC.labels_topic: 5}


def test_a_label_without_time_takes_its_record_timestamp():
    join, _ = processor()
    out = OutputList()
    join.process_batch([served("e1", 1_000, 0), label("e1", True, 0)], out)
    assert orjson.loads(out[0].value)["label_time"] == 7_000


def test_restore_resumes_at_the_checkpoint_offsets_with_what_was_waiting():
    join, _ = processor()
    join.process_batch([served("e1", 1_000, 0), served("e2", 1_100, 1)], OutputList())
    state, meta = join.checkpoint_records()
    join.process_batch([served("e3", 1_200, 2)], OutputList())
    cut_short, _ = join.checkpoint_records()  # its meta never written: rolled back

    restored, _ = processor()
    repairs = restored.restore([*state, meta, *cut_short])
    assert restored.offsets == {SPEC.served_topic: 2}
    assert set(restored.join.pending) == {"e1", "e2"}
    assert [k for k, _ in repairs] == ["join/1/e3"]
    out = OutputList()
    restored.process_batch([label("e2", False, 0, t=1_500)], out)
    assert orjson.loads(out[0].value)["event_id"] == "e2"


def test_the_learner_learns_each_event_once_and_forgets_after_two_ttls():
    learner = Learner(Candidates({"m": linear_model.LogisticRegression}), ttl_ms=1_000)

    def example(event_id: str, t: float) -> dict:
        return {"event_id": event_id, "x": {"a": 1.0}, "label": True, "label_time": t,
                "champion": "m", "predictions": {"m": {"prediction": False}}}

    assert learner.learn(example("e1", 0)) and not learner.learn(example("e1", 0))
    assert learner.learn(example("e2", 1_500))
    assert learner.learn(example("e3", 2_500))  # e1 is now more than 2 TTLs behind
    assert set(learner.seen) == {"e2", "e3"} and learner.duplicates == 1
    again = Learner(Candidates({"m": linear_model.LogisticRegression}), ttl_ms=1_000)
    again.load_seen(learner.seen_bytes())
    assert not again.learn(example("e2", 1_500))
    assert learner.model.version == 3 and learner.model.score.get() == 0.0
