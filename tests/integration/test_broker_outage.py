"""The broker goes away mid-stream, twice (a clean stop, then kill -9), and comes back.

The test runs its own broker (the session's is shared). The worker runs exactly-once, so
each kill lands with a transaction open. It must neither exit nor flood its log: one line
when the outage starts, one when it ends; ``/metrics`` keeps answering and shows the outage;
afterwards a ``read_committed`` reader sees exactly one prediction per event (nothing lost,
nothing twice, no dedup), and the served accuracy still equals River's
``progressive_val_score`` exactly (nothing learned twice, nothing skipped).
"""

from __future__ import annotations

import signal
import time
import urllib.request
from pathlib import Path

import orjson
from kafka import KafkaProducer
from river import datasets, evaluate, metrics

from streamlearn.broker.local import LocalBroker
from streamlearn.broker.system import signal_pid
from streamlearn.config import Settings
from streamlearn.kafka.admin import create_topics
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.spec.topics import topic_configs
from streamlearn.tools.predictions import prequential_accuracy
from streamlearn.tools.sources import iter_events

from .conftest import EXAMPLE, free_port, worker_log
from .topics import first_per_event, predictions, wait_for_predictions, wait_until

OUTAGE_S = 12


def send(bootstrap: str, topic: str, events: list[tuple[int, dict]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i, event in events:
        producer.send(topic, key=f"ev-{i}".encode(),
                      value=orjson.dumps({**event, "event_id": f"ev-{i}"}))
    producer.flush()
    producer.close()


def scrape(port: str) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def test_broker_outages_are_waited_out_and_lose_nothing(
        name, start_worker, worker_env, tmp_path: Path):
    settings = Settings.from_env({
        "STREAMLEARN_STATE_DIR": str(tmp_path / "own-broker"),
        "STREAMLEARN_KAFKA_PORT": str(free_port()),
        "STREAMLEARN_CONTROLLER_PORT": str(free_port()),
    })
    broker = LocalBroker(settings)
    bootstrap = broker.start()
    try:
        spec = load_pipeline(EXAMPLE).renamed(name)
        create_topics(bootstrap, spec.topics, topic_configs(spec, settings))
        events = list(enumerate(iter_events("river:Phishing", label_field="is_phishing")))
        port = worker_env["STREAMLEARN_METRICS_PORT"]
        worker = start_worker(EXAMPLE, name, {"STREAMLEARN_BOOTSTRAP": bootstrap,
                                              "STREAMLEARN_SNAPSHOT_EVERY": "100",
                                              "STREAMLEARN_PROCESSING_GUARANTEE": "exactly_once"})
        recoveries = []
        up, down = (f'streamlearn_broker_up{{pipeline="{name}"}} {v}' for v in ("1.0", "0.0"))
        for chunk, how in ((events[:400], "stop"), (events[400:800], "kill -9")):
            send(bootstrap, spec.events_topic, chunk)
            wait_until(lambda c=chunk: len(first_per_event(predictions(
                bootstrap, spec.predictions_topic))) >= c[0][0] + 100, 90, "predictions")
            if how == "stop":
                broker.stop()
            else:
                pid = broker.pid
                assert pid is not None
                signal_pid(pid, signal.SIGKILL)
            try:
                wait_until(lambda: down in scrape(port), 60, "the outage on /metrics")
            except AssertionError as exc:  # where the worker waits, if it says (a stall)
                raise AssertionError(f"{exc}; worker log: {worker_log(tmp_path)[-3000:]}"
                                     ) from None
            time.sleep(OUTAGE_S)
            assert worker.poll() is None, worker_log(tmp_path)
            back = time.time()
            broker.start()
            started = time.time()
            wait_until(lambda: up in scrape(port), 90, "the worker to see the broker back")
            recoveries.append((how, round(started - back, 1), round(time.time() - started, 1)))
        send(bootstrap, spec.events_topic, events[800:])
        print("broker start, then the worker's reconnection (s):", recoveries)

        ids = {f"ev-{i}" for i, _ in events}
        served = wait_for_predictions(bootstrap, spec.predictions_topic, ids, 120,
                                      alive=lambda: worker.poll() is None)
        labels = {f"ev-{i}": e["is_phishing"] for i, e in events}
        reference = evaluate.progressive_val_score(
            datasets.Phishing(), spec.model(), metrics.Accuracy()).get()
        assert prequential_accuracy(labels, served) == reference
        out = predictions(bootstrap, spec.predictions_topic)
        assert sorted(r["event_id"] for r in out) == sorted(ids), "each prediction once"
        assert "streamlearn_broker_outages_total" in scrape(port)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, worker_log(tmp_path)
    finally:
        broker.stop()
    log = worker_log(tmp_path)
    assert log.count("lost the Kafka broker") == 2, log[-5000:]
    assert log.count("the Kafka broker is back after") == 2, log[-5000:]
    errors = [line for line in log.splitlines() if "ERROR" in line or "FAIL" in line]
    assert len(errors) <= 6, errors[:20]
