"""Guarantee 1: replaying Phishing through real Kafka scores exactly as River does."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from river import datasets, evaluate, metrics

from streamlearn.pipeline import load_pipeline
from streamlearn.predictions import prequential_accuracy
from streamlearn.replay import ReplayOptions, replay
from streamlearn.sources import iter_events
from streamlearn.tail import tail

from .conftest import EXAMPLE, worker_log


def read_all(kafka: str, topic: str, expected: int) -> list[dict]:
    import orjson

    records = []
    for record in tail(kafka, topic, from_beginning=True, idle_timeout=15.0):
        records.append(orjson.loads(record.value))
        if len(records) >= expected:
            # Keep reading briefly: a duplicate would arrive right behind.
            for extra in tail(kafka, topic, from_beginning=False, idle_timeout=2.0):
                records.append(orjson.loads(extra.value))
            break
    return records


def test_phishing_replay_matches_progressive_val_score(kafka, name, topics, start_worker,
                                                      tmp_path: Path):
    spec = load_pipeline(EXAMPLE).renamed(name)
    topics(name)
    events = list(iter_events("river:Phishing", label_field="is_phishing"))
    sent = replay(events, kafka, ReplayOptions(topic=spec.events_topic, id_prefix="ev"))
    assert sent == 1250
    worker = start_worker(EXAMPLE, name)

    predictions = read_all(kafka, spec.predictions_topic, expected=sent)
    assert worker.poll() is None, worker_log(tmp_path)

    per_event = Counter(p["event_id"] for p in predictions)
    assert len(predictions) == sent, "exactly one prediction per event"
    assert set(per_event) == {f"ev-{i}" for i in range(sent)}
    assert max(per_event.values()) == 1

    by_id = {p["event_id"]: p for p in predictions}
    labels = {f"ev-{i}": e["is_phishing"] for i, e in enumerate(events)}
    reference = evaluate.progressive_val_score(
        datasets.Phishing(), spec.model(), metrics.Accuracy()
    ).get()
    assert prequential_accuracy(labels, by_id) == reference
    assert [by_id[f"ev-{i}"]["model_version"] for i in range(sent)] == list(range(sent))
