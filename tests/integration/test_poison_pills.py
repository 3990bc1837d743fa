"""Guarantee 3 under poison pills: a bad event goes to the DLQ alone, the rest is served.

1% of the events carry a wrong type, a nested value, a wrong label type or too many bytes,
interleaved with valid ones in the same batches. Every valid event gets exactly one
prediction, every bad one is a dead letter with its reason, the worker never restarts, and
the accuracy served on the valid events equals River's ``progressive_val_score`` on the
valid events alone.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
from kafka import KafkaProducer
from river import datasets, evaluate, metrics

from streamlearn.spec.pipeline import load_pipeline
from streamlearn.tools.predictions import prequential_accuracy
from streamlearn.tools.tail import read_to_end

from .conftest import EXAMPLE, worker_log
from .topics import wait_for_predictions

MAX_BYTES = 2000

# (how to spoil a valid event, the reason it must be dead-lettered with)
POISONS = [
    (lambda e: {**e, "long_url": "abc"}, "bad_type"),
    (lambda e: {**e, "https": {"nested": 1.0}}, "bad_type"),
    (lambda e: {**e, "popup_window": [1, 2]}, "bad_type"),
    (lambda e: {**e, "ip_in_url": True}, "bad_type"),  # a JSON boolean is not a number
    (lambda e: {**e, "is_phishing": "yes"}, "bad_type"),  # the label is declared boolean
    (lambda e: {**e, "note": "x" * MAX_BYTES}, "too_large"),
    (lambda e: {k: v for k, v in e.items() if k != "is_phishing"}, "missing_field"),
]


def build_stream(seed: int) -> tuple[list[dict], list[tuple[int, bytes, str]]]:
    """Valid events (some with nulls and undeclared fields) and bad ones at random places."""
    rng = random.Random(seed)
    valid, stream = [], []
    for i, (x, y) in enumerate(datasets.Phishing()):
        event = {**x, "event_id": f"ok-{i}", "is_phishing": y}
        if i % 50 == 7:
            event["age_of_domain"] = None  # absent, not an error
        if i % 40 == 3:
            event["producer_added_this"] = "ignored"  # undeclared: ignored and counted
        valid.append(event)
        stream.append(("ok", orjson.dumps(event)))
        if rng.random() < 0.01:
            spoil, reason = POISONS[len(stream) % len(POISONS)]
            bad = spoil({**event, "event_id": f"bad-{i}"})
            stream.append((reason, orjson.dumps(bad)))
    return valid, stream


def test_poison_pills_are_dead_lettered_alone(kafka, name, topics, start_worker, tmp_path: Path):
    topics(name)
    spec = load_pipeline(EXAMPLE).renamed(name)
    valid, stream = build_stream(seed=6)
    producer = KafkaProducer(bootstrap_servers=kafka, linger_ms=5)
    bad_offsets = {}
    futures = [(kind, producer.send(name, raw)) for kind, raw in stream]
    producer.flush()
    for kind, future in futures:
        if kind != "ok":
            bad_offsets[future.get().offset] = kind
    producer.close()
    assert 8 <= len(bad_offsets) <= 25

    worker = start_worker(EXAMPLE, name, env={"STREAMLEARN_MAX_EVENT_BYTES": str(MAX_BYTES)})
    ids = {e["event_id"] for e in valid}
    wait_for_predictions(kafka, spec.predictions_topic, ids, 120,
                         alive=lambda: worker.poll() is None)
    records = [orjson.loads(r.value) for r in read_to_end(kafka, spec.predictions_topic)]
    served = [r["event_id"] for r in records]
    assert sorted(served) == sorted(ids), "exactly one prediction per valid event, none for bad"

    letters = list(read_to_end(kafka, spec.dlq_topic))
    got = {int(dict(r.headers)["streamlearn.source.offset"]):
           dict(r.headers)["streamlearn.error.reason"].decode() for r in letters}
    assert got == bad_offsets, "each bad event is a dead letter with its reason"
    assert all(dict(r.headers)["streamlearn.error"] for r in letters)

    log = worker_log(tmp_path)
    assert worker.poll() is None, log
    assert log.count("partition 0: no snapshot") == 1, "the hot path never restarted"

    assert_parity_on_valid(spec, valid, records)


def assert_parity_on_valid(spec, valid: list[dict], records: list[dict]) -> None:
    """The accuracy served on the valid events == River's progressive score on them alone."""
    by_id = {r["event_id"]: r for r in records}
    labels = {e["event_id"]: e["is_phishing"] for e in valid}
    reference = evaluate.progressive_val_score(
        [({k: e[k] for k in spec.features if e.get(k) is not None}, e["is_phishing"])
         for e in valid],
        spec.model(), metrics.Accuracy(),
    ).get()
    assert prequential_accuracy(labels, by_id) == reference
