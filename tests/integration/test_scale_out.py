"""A second worker joins while the first holds a bulk of labels waiting for their events.

Labels read ahead of their events wait in the label join; on a rebalance the join is
checkpointed, one record per waiting label. With more of them than librdkafka queues at
once (100,000 records by default) the worker used to crash on the rebalance (``BufferError:
Local: Queue full``), which made two workers slower than one. Now both keep running, every
waiting label is restored by the partitions' new owners, and every event is predicted.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from streamlearn.kafka.producer import Producer
from streamlearn.spec.pipeline import load_pipeline

from .conftest import free_port, worker_log
from .test_global_learner import DELAYED, SETTINGS, phishing_stream, produce, sample, scrape
from .topics import wait_for_predictions, wait_until

WAITING = 120_000
"""Labels whose events come later: more than librdkafka's default queue of 100,000."""


def pending(port: int) -> float:
    try:
        text = scrape(port)
    except OSError:  # not serving /metrics yet
        return 0.0
    return sum(float(v) for v in re.findall(
        r'^streamlearn_labels_pending\{[^}]*\} (\S+)$', text, re.M))


def test_a_worker_joining_under_a_bulk_of_waiting_labels_loses_nothing(
        kafka, name, topics, start_worker, tmp_path: Path):
    topics(name, DELAYED)
    spec = load_pipeline(DELAYED).renamed(name)
    producer = Producer({"bootstrap.servers": kafka, "partitioner": "murmur2_random",
                         "linger.ms": 5})
    for i in range(WAITING):  # far in event time from the events below: none expires
        producer.produce(spec.labels_topic, key=f"w{i}".encode(), value=orjson.dumps(
            {"event_id": f"w{i}", "label": i % 2 == 0, "time": 1_767_225_600_000}))
    assert producer.flush(60) == 0
    ports = [free_port(), free_port()]
    # No periodic checkpoint before the rebalance: the revoke writes them all at once.
    quiet = {**SETTINGS, "STREAMLEARN_SNAPSHOT_EVERY": "1000000",
             "STREAMLEARN_SNAPSHOT_INTERVAL": "600"}
    first = start_worker(DELAYED, name, quiet, metrics_port=ports[0])
    wait_until(lambda: pending(ports[0]) >= WAITING, 120, "the labels in the join")
    second = start_worker(DELAYED, name, quiet, metrics_port=ports[1])
    logs = lambda: worker_log(tmp_path, 0) + worker_log(tmp_path, 1)  # noqa: E731
    def restored() -> int:
        assert first.poll() is None and second.poll() is None, logs()[-3000:]
        return sum(int(n) for n in re.findall(r"restored the label join \((\d+) waiting\)",
                                              logs()))

    # Every waiting label came through the checkpoint: the new owners restored them all.
    wait_until(lambda: restored() >= WAITING, 120, "the joins restored with every label")
    events, labels = phishing_stream(seed=5, max_delay_ms=5_000)
    produce(kafka, name, events, labels, pause_every=250)
    ids = {e["event_id"] for e in events}
    wait_for_predictions(kafka, spec.predictions_topic, ids, 120,
                         alive=lambda: first.poll() is None and second.poll() is None)
    assert "Traceback" not in logs(), logs()[-3000:]
    assert sample(scrape(ports[0]), f'streamlearn_learner_active{{pipeline="{name}"}}') + \
        sample(scrape(ports[1]), f'streamlearn_learner_active{{pipeline="{name}"}}') == 1
