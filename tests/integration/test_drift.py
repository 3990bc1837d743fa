"""Drift detection through Kafka fires exactly where the same River detectors fire offline.

A seeded stream on one partition: feature ``a``'s mean shifts at event 3,000 (data drift),
and the label's rule flips at event 4,000 (concept drift). The worker's drift events on
``<name>.drift`` are compared with River's ADWIN (on ``a``'s and ``b``'s values, positions
in offsets) and ADWIN and DDM (on the served prediction's 0/1 error, positions in examples)
run offline on the same sequences, with ``==``.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import orjson
from kafka import KafkaProducer
from river import drift

from streamlearn.models.online import OnlineModel
from streamlearn.pipeline import load_pipeline
from streamlearn.tail import read_to_end

from .conftest import ROOT, worker_log
from .topics import wait_for_predictions

DRIFTING = ROOT / "tests" / "integration" / "pipelines" / "drifting.py"
N = 6000


def drifting_stream(seed: int) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(N):
        a = rng.gauss(3.0 if i >= 3000 else 0.0, 1.0)
        b = rng.gauss(0.0, 1.0)
        y = (a + b > 0) if i < 4000 else (b < 0)
        events.append({"event_id": f"e-{i}", "a": a, "b": b, "y": y})
    return events


def offline_positions(spec, events: list[dict]) -> tuple[set, set]:
    """(concept signals, data signals) where River's detectors fire on the same sequences."""
    model = OnlineModel(spec.model())
    adwin, ddm = drift.ADWIN(), drift.binary.DDM()
    concept, data = set(), set()
    values = {f: drift.ADWIN() for f in ("a", "b")}
    in_warning = False
    for offset, e in enumerate(events):
        x = {"a": e["a"], "b": e["b"]}
        for feature, detector in values.items():
            detector.update(x[feature])
            if detector.drift_detected:
                data.add((feature, offset))
        served, _ = model.predict(x)
        model.learn(x, e["y"], served=None)  # the detectors below are the reference
        if served is None:
            continue
        error = 0.0 if served == e["y"] else 1.0
        position = model.version
        adwin.update(error)
        if adwin.drift_detected:
            concept.add(("ADWIN", "drift", position))
        ddm.update(error)
        if ddm.warning_detected and not in_warning:
            concept.add(("DDM", "warning", position))
        in_warning = ddm.warning_detected
        if ddm.drift_detected:
            concept.add(("DDM", "drift", position))
            in_warning = False
    return concept, data


def test_drift_positions_through_kafka_equal_river_offline(
        kafka, name, topics, start_worker, tmp_path: Path):
    spec = load_pipeline(DRIFTING).renamed(name)
    topics(name, DRIFTING)
    events = drifting_stream(seed=3)
    concept, data = offline_positions(spec, events)
    assert any(d == "ADWIN" and lv == "drift" and p > 4000 for d, lv, p in concept)
    assert any(f == "a" and 3000 <= o < 3200 for f, o in data), "the shift in a is seen"

    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for event in events:
        producer.send(spec.events_topic, key=event["event_id"].encode(),
                      value=orjson.dumps(event))
    producer.flush()
    worker = start_worker(DRIFTING, name)
    wait_for_predictions(kafka, spec.predictions_topic, {e["event_id"] for e in events}, 120,
                         alive=lambda: worker.poll() is None)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, worker_log(tmp_path)

    records = [orjson.loads(r.value) for r in read_to_end(kafka, spec.drift_topic)]
    online_concept = {(r["detector"], r["level"], r["at_example"]) for r in records
                      if r["kind"] == "concept"}
    online_data = {(r["feature"], r["at_offset"]) for r in records
                   if r["kind"] == "data" and r["detector"] == "ADWIN"}
    assert online_concept == concept
    assert online_data == data
    assert all(r["model"] and r["action"] == "alert" for r in records)
