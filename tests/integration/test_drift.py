"""Drift detection through Kafka fires exactly where the same River detectors fire offline.

A seeded stream on one partition: feature ``a``'s mean shifts at event 3,000 (data drift),
and the label's rule flips at event 4,000 (concept drift). The worker's drift events on
``<name>.drift`` are compared with River's ADWIN (on ``a``'s and ``b``'s values, positions
in offsets) and ADWIN and DDM (on the served prediction's 0/1 error, positions in examples)
run offline on the same sequences, with ``==``.
"""

from __future__ import annotations

import itertools
import random
import signal
from pathlib import Path

import orjson
from kafka import KafkaProducer
from river import drift
from river.datasets import synth

from streamlearn.models.online import OnlineModel
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.tools.tail import read_to_end

from .conftest import ROOT, worker_log
from .topics import wait_for_predictions

DRIFTING = ROOT / "tests" / "integration" / "pipelines" / "drifting.py"
AGRAWAL = ROOT / "tests" / "integration" / "pipelines" / "agrawal.py"
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


def agrawal_stream(seed: int) -> list[dict]:
    """River's ConceptDriftStream (Agrawal, function 0 then 4) around event 3,000."""
    stream = synth.ConceptDriftStream(
        stream=synth.Agrawal(classification_function=0, seed=seed),
        drift_stream=synth.Agrawal(classification_function=4, seed=seed),
        position=3000, width=50, seed=seed,
    )
    return [{**x, "event_id": f"e-{i}", "y": bool(y)}
            for i, (x, y) in enumerate(itertools.islice(stream, N))]


class ConceptReference:
    """River's ADWIN and DDM on a 0/1 error sequence: (detector, level, position) of each
    signal, a DDM warning once when it starts (what the worker reports)."""

    def __init__(self) -> None:
        self.adwin, self.ddm = drift.ADWIN(), drift.binary.DDM()
        self.fired: list[tuple[str, str, int]] = []
        self._in_warning = False

    def update(self, error: float, position: int) -> None:
        self.adwin.update(error)
        if self.adwin.drift_detected:
            self.fired.append(("ADWIN", "drift", position))
        self.ddm.update(error)
        if self.ddm.warning_detected and not self._in_warning:
            self.fired.append(("DDM", "warning", position))
        self._in_warning = self.ddm.warning_detected
        if self.ddm.drift_detected:
            self.fired.append(("DDM", "drift", position))
            self._in_warning = False


def offline_positions(spec, events: list[dict]) -> tuple[set, set]:
    """(concept signals, data signals) where River's detectors fire on the same sequences."""
    model = OnlineModel(spec.model())
    concept = ConceptReference()
    data = set()
    fields = list(spec.features)
    values = {f: drift.ADWIN() for f in fields}
    for offset, e in enumerate(events):
        x = {f: e[f] for f in fields}
        for feature, detector in values.items():
            detector.update(x[feature])
            if detector.drift_detected:
                data.add((feature, offset))
        served, _ = model.predict(x)
        model.learn(x, e["y"], served=None)  # the detectors below are the reference
        if served is None:
            continue
        concept.update(0.0 if served == e["y"] else 1.0, model.version)
    return set(concept.fired), data


def through_kafka(kafka, spec, pipeline_file, events, start_worker, tmp_path) -> list[dict]:
    """The drift events a worker writes for ``events`` (one partition, then a clean stop)."""
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for event in events:
        producer.send(spec.events_topic, key=event["event_id"].encode(),
                      value=orjson.dumps(event))
    producer.flush()
    worker = start_worker(pipeline_file, spec.name)
    wait_for_predictions(kafka, spec.predictions_topic, {e["event_id"] for e in events}, 120,
                         alive=lambda: worker.poll() is None)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, worker_log(tmp_path)
    return [orjson.loads(r.value) for r in read_to_end(kafka, spec.drift_topic)]


def split(records: list[dict]) -> tuple[set, set]:
    concept = {(r["detector"], r["level"], r["at_example"]) for r in records
               if r["kind"] == "concept"}
    data = {(r["feature"], r["at_offset"]) for r in records
            if r["kind"] == "data" and r["detector"] == "ADWIN"}
    return concept, data


def test_drift_positions_through_kafka_equal_river_offline(
        kafka, name, topics, start_worker, tmp_path: Path):
    spec = load_pipeline(DRIFTING).renamed(name)
    topics(name, DRIFTING)
    events = drifting_stream(seed=3)
    concept, data = offline_positions(spec, events)
    assert any(d == "ADWIN" and lv == "drift" and p > 4000 for d, lv, p in concept)
    assert any(f == "a" and 3000 <= o < 3200 for f, o in data), "the shift in a is seen"

    records = through_kafka(kafka, spec, DRIFTING, events, start_worker, tmp_path)
    assert split(records) == (concept, data)
    assert all(r["model"] and r["action"] == "alert" for r in records)


def test_concept_drift_stream_positions_equal_river_offline(
        kafka, name, topics, start_worker, tmp_path: Path):
    spec = load_pipeline(AGRAWAL).renamed(name)
    topics(name, AGRAWAL)
    events = agrawal_stream(seed=7)
    concept, data = offline_positions(spec, events)
    assert any(d == "ADWIN" and lv == "drift" and 3000 < p < 4000 for d, lv, p in concept)
    records = through_kafka(kafka, spec, AGRAWAL, events, start_worker, tmp_path)
    assert split(records) == (concept, data)
