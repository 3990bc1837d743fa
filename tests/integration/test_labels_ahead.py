"""Labels far ahead of their events: the worker reads at most STREAMLEARN_LABELS_AHEAD_MAX of
them per partition into the label join, then waits for their events, and loses none.

A backlog puts every label of it before the events it labels (the join reads the labels
topic faster than predictors write served records). Unbounded, they all sit in memory and
in the next checkpoint.
"""

from __future__ import annotations

import signal

import orjson

from streamlearn.kafka.producer import Producer
from streamlearn.spec.pipeline import load_pipeline

from .conftest import free_port, worker_log
from .test_global_learner import (
    DELAYED,
    SETTINGS,
    assert_final_model_is_offline,
    learned,
    phishing_stream,
    training,
)
from .test_scale_out import pending
from .topics import wait_for_predictions, wait_until

LIMIT = 200


def send(kafka: str, topic: str, records: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": kafka, "partitioner": "murmur2_random"})
    for record in records:
        producer.produce(topic, key=record["event_id"].encode(), value=orjson.dumps(record))
    assert producer.flush(30) == 0


def test_labels_read_ahead_are_bounded_and_every_one_joins(
        kafka, name, topics, start_worker, tmp_path):
    topics(name, DELAYED)
    spec = load_pipeline(DELAYED).renamed(name)
    events, labels = phishing_stream(seed=11, max_delay_ms=0)
    send(kafka, spec.labels_topic, labels)  # every label first: all of them ahead
    port = free_port()
    worker = start_worker(DELAYED, name, {**SETTINGS, "STREAMLEARN_LABELS_AHEAD_MAX": str(LIMIT)},
                          metrics_port=port)
    wait_until(lambda: worker_log(tmp_path).count("labels wait for their events") == 2, 60,
               "the worker to stop reading labels on both partitions")
    held = pending(port)
    # At most LIMIT per partition, plus the batch that crossed it; not the 1,250 sent.
    assert 2 * LIMIT <= held <= 2 * (LIMIT + int(SETTINGS["STREAMLEARN_BATCH_SIZE"])), held

    send(kafka, spec.events_topic, events)
    ids = {e["event_id"] for e in events}
    wait_for_predictions(kafka, spec.predictions_topic, ids, 120,
                         alive=lambda: worker.poll() is None)
    # Every label was read in the end and joined its event, and each was learned once.
    wait_until(lambda: len(training(kafka, spec)) == len(ids), 60, "every example joined")
    wait_until(lambda: learned(port, name) == len(ids), 60, "every example learned")
    assert pending(port) == 0
    worker.send_signal(signal.SIGTERM)  # a clean stop publishes the last snapshot
    assert worker.wait(timeout=60) == 0, worker_log(tmp_path)[-3000:]
    examples = training(kafka, spec)
    assert {e["event_id"] for e in examples} == ids
    x_of = [{k: v for k, v in e.items() if k in spec.features} for e in events]
    assert_final_model_is_offline(kafka, spec, examples, x_of[:300])
    assert "Traceback" not in worker_log(tmp_path)
