"""Guarantee 3: bad events go to the DLQ with their reason; the worker keeps predicting."""

from __future__ import annotations

import itertools
import time
import urllib.request
from pathlib import Path

import orjson
from kafka import KafkaProducer
from river import datasets

from streamlearn.tools.predictions import collect_predictions
from streamlearn.tools.tail import tail

from .conftest import EXAMPLE, worker_log

BAD = [
    (b"{this is not json", "invalid_json"),
    (b'["an", "array"]', "not_object"),
    (b'{"is_phishing": true, "long_url": 1.0}', "missing_field"),
]


def good_event(i: int, x: dict, y: bool) -> bytes:
    return orjson.dumps({**x, "event_id": f"good-{i}", "is_phishing": y})


def scrape(port: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_bad_events_land_in_the_dlq_and_the_worker_keeps_running(
    kafka, name, topics, start_worker, worker_env, tmp_path: Path
):
    topics(name)
    rows = list(itertools.islice(datasets.Phishing(), 20))
    producer = KafkaProducer(bootstrap_servers=kafka)
    # good, bad, good, bad, ... so the worker must survive each bad one to serve the next.
    offsets = {}
    for i, (x, y) in enumerate(rows):
        producer.send(name, good_event(i, x, y)).get(timeout=10)
        if i < len(BAD):
            raw, _ = BAD[i]
            meta = producer.send(name, raw, headers=[("origin", b"test")]).get(timeout=10)
            offsets[raw] = meta.offset
    producer.close()
    worker = start_worker(EXAMPLE, name)

    found = collect_predictions(kafka, f"{name}.predictions", {f"good-{i}" for i in range(20)},
                                timeout=90)
    assert len(found) == 20, worker_log(tmp_path)
    assert worker.poll() is None, "the worker keeps running after bad events"

    letters = list(tail(kafka, f"{name}.dlq", from_beginning=True, limit=3, idle_timeout=20))
    assert len(letters) == 3
    for letter, (raw, reason) in zip(letters, BAD, strict=True):
        headers = dict(letter.headers)
        assert letter.value == raw, "the original bytes, unchanged"
        assert headers["streamlearn.source.topic"] == name.encode()
        assert headers["streamlearn.source.partition"] == b"0"
        assert headers["streamlearn.source.offset"] == str(offsets[raw]).encode()
        assert headers["streamlearn.error.reason"] == reason.encode()
        assert headers["streamlearn.error"], "a human-readable error"
        assert headers["origin"] == b"test"

    text = scrape(worker_env["STREAMLEARN_METRICS_PORT"])
    for _, reason in BAD:
        line = f'streamlearn_dead_letters_total{{pipeline="{name}",reason="{reason}"}} 1.0'
        assert line in text
    assert f'streamlearn_events_total{{pipeline="{name}"}} 23.0' in text
