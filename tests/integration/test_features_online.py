"""Online features equal the offline twin, value for value, through Kafka and across kill -9.

A seeded stream of card payments on two partitions: cards go idle for longer than the
entity TTL and come back, some events arrive out of order (a few beyond the allowed
lateness), and the pipeline declares windows of 30 s, 2 min and 5 min. The worker's served
records (``<name>.served``) are compared with ``streamlearn.features.offline`` on the same
events, with ``==`` on every value.
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import orjson
from kafka import KafkaProducer

from streamlearn.features.offline import OfflineRun
from streamlearn.kafka.records import is_watermark
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.tools.tail import read_to_end

from .conftest import ROOT, worker_log
from .topics import predictions, wait_until

CARDS = ROOT / "tests" / "integration" / "pipelines" / "cards.py"
START_MS = 1_767_225_600_000
SETTINGS = {"STREAMLEARN_SNAPSHOT_EVERY": "200", "STREAMLEARN_BATCH_SIZE": "40",
            "STREAMLEARN_SNAPSHOT_INTERVAL": "1"}


def card_stream(n: int, seed: int) -> list[dict]:
    """Payments of 40 cards in four groups taking turns, so cards sit idle past the TTL."""
    rng = random.Random(seed)
    events, newest = [], START_MS
    for i in range(n):
        newest += rng.randint(100, 1500)
        t = newest
        if rng.random() < 0.04:  # out of order: up to 40 s behind (the lateness is 20 s)
            t = newest - rng.randint(1000, 40_000)
        group = (i // 500) % 4
        card = f"c{group * 10 + rng.randrange(10)}"
        amount = round(rng.lognormvariate(3, 1), 2)
        events.append({"tx_id": f"tx-{i}", "card": card, "merchant": f"m{rng.randrange(25)}",
                       "amount": amount, "time": t, "is_fraud": amount > 120})
    return events


def produce(kafka: str, topic: str, events: list[dict], rate: float | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")  # murmur2, like the worker
    for i, event in enumerate(events):
        producer.send(topic, key=event["card"].encode(), value=orjson.dumps(event))
        if rate and i % 10 == 9:
            producer.flush()
            time.sleep(10 / rate)
    producer.flush()
    producer.close()


def served(kafka: str, topic: str) -> list[dict]:
    """The served records (watermark records, for the label join's order, left out)."""
    records = (orjson.loads(r.value) for r in read_to_end(kafka, topic))
    return [r for r in records if not is_watermark(r)]


def served_all(kafka: str, topic: str, ids: set[str], alive) -> list[dict]:
    def check():
        assert alive(), "the worker exited"
        records = served(kafka, topic)
        return records if ids <= {r["event_id"] for r in records} else None

    return wait_until(check, 120, f"{len(ids)} served records", every=1.0)


def offline_twin(spec, events: list[dict]) -> tuple[dict[str, dict], dict[str, int]]:
    run = OfflineRun(spec)
    rows = {events[r.index]["tx_id"]: r.x for r in run.rows(enumerate(events))}
    return rows, run.counts()


def metric(port: str, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(v) for v in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M))


def test_served_features_equal_the_offline_twin_and_idle_cards_expire(
        kafka, name, topics, start_worker, worker_env, tmp_path: Path):
    spec = load_pipeline(CARDS).renamed(name)
    topics(name, CARDS)
    events = card_stream(2500, seed=7)
    expected, counts = offline_twin(spec, events)
    assert counts["late"] > 0 and counts["expired"] > 0, "the stream exercises both rules"
    produce(kafka, spec.events_topic, events)
    worker = start_worker(CARDS, name, SETTINGS)

    records = served_all(kafka, spec.served_topic, set(expected),
                         alive=lambda: worker.poll() is None)
    first: dict[str, dict] = {}
    for record in records:
        first.setdefault(record["event_id"], record)
    mismatches = [i for i, x in expected.items() if first[i]["x"] != x]
    assert not mismatches, (mismatches[:3], [first[i]["x"] for i in mismatches[:3]],
                            [expected[i] for i in mismatches[:3]])
    assert len(records) == len(expected), "one served record per event, no replay"
    by_id = {e["tx_id"]: e for e in events}
    assert all(r["label"] is by_id[r["event_id"]]["is_fraud"] for r in records)

    # Entity TTL in event time: the worker expired and holds what the twin does.
    port = worker_env["STREAMLEARN_METRICS_PORT"]
    wait_until(lambda: metric(port, "streamlearn_entities_expired_total") == counts["expired"]
               and metric(port, "streamlearn_feature_entities") == counts["entities"], 30,
               f"{counts['expired']} expired and {counts['entities']} entities held")
    assert metric(port, "streamlearn_late_events_total") == counts["late"]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, worker_log(tmp_path)


def kill9_midstream(kafka, spec, pipeline_file, events, start_worker, snapshot_every: int,
                    kill_between: tuple[int, int], kills: int = 1,
                    env: dict[str, str] | None = None, rate: float = 200) -> list[dict]:
    """Events flow at ``rate``/s; the worker is SIGKILLed at random points and restarted (a
    later kill: a few hundred events after the restarted worker's first output).

    Returns every served record once all events are served (duplicates included). Prints
    the recovery time of each kill: from the kill to the first new served record a
    ``read_committed`` reader sees.
    """
    producer = threading.Thread(target=produce, args=(kafka, spec.events_topic, events, rate))
    producer.start()
    settings = {**SETTINGS, "STREAMLEARN_SNAPSHOT_EVERY": str(snapshot_every),
                "STREAMLEARN_SNAPSHOT_INTERVAL": "60", **(env or {})}
    worker = start_worker(pipeline_file, spec.name, settings)
    rng, point = random.Random(), random.Random().randrange(*kill_between)
    for kill in range(kills):
        wait_until(lambda p=point: len({r["event_id"] for r in served(kafka, spec.served_topic)
                                        }) >= p, 90, f"{point} served records")
        assert producer.is_alive(), "the kill must land while events still flow"
        worker.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        worker.wait(timeout=30)
        seen = len(served(kafka, spec.served_topic))
        worker = start_worker(pipeline_file, spec.name, settings)
        wait_until(lambda s=seen: len(served(kafka, spec.served_topic)) > s, 90,
                   "a new served record")
        print(f"{spec.name}: kill {kill + 1} after ~{point} events; new output visible "
              f"{time.monotonic() - killed_at:.1f} s after the kill")
        point = len({r["event_id"] for r in served(kafka, spec.served_topic)}) + rng.randrange(
            100, 300)
    producer.join()
    records = served_all(kafka, spec.served_topic, {e["tx_id"] for e in events},
                         alive=lambda: worker.poll() is None)
    print(f"{spec.name}: {len(records) - len(events)} served records replayed")
    return records


def test_after_kill9_served_features_still_equal_the_offline_twin(
        kafka, name, topics, start_worker, tmp_path: Path):
    spec = load_pipeline(CARDS).renamed(name)
    topics(name, CARDS)
    events = card_stream(3000, seed=11)
    expected, _ = offline_twin(spec, events)
    records = kill9_midstream(kafka, spec, CARDS, events, start_worker, 500, (700, 1700))
    log = worker_log(tmp_path, 1)
    assert "restored the feature state" in log, log
    # Every served record, the replayed duplicates included, carries the twin's values:
    # the restored state was exactly the state at the snapshot, and no event counted twice.
    wrong = [r["event_id"] for r in records if r["x"] != expected[r["event_id"]]]
    assert not wrong, (wrong[:3], log[-3000:])
    assert len(records) > len(expected), "the kill landed between snapshots: events replayed"


BY_MERCHANT = ROOT / "tests" / "integration" / "pipelines" / "cards_by_merchant.py"


def test_features_by_merchant_equal_the_twin_in_real_time_as_a_backlog_and_across_kill9(
        kafka, name, topics, start_worker, tmp_path: Path):
    """Both card partitions write to each merchant partition: the merchant stage merges
    them by event time (``streams.merge``), so its values are the twin's, which knows only
    the events, however the worker happened to read the card partitions.

    The kill mode runs under exactly-once and is killed twice: a ``read_committed`` reader
    sees every event once on ``.served``, predictions and ``.training`` (the features restored from
    their checkpoint and replayed to the committed offsets without writing)."""
    events = card_stream(2500, seed=13)
    for mode in ("backlog", "real_time", "kill9"):
        run_name = f"{name}-{mode}"
        spec = load_pipeline(BY_MERCHANT).renamed(run_name)
        assert f"{run_name}.by-merchant" in spec.topics and spec.partitions == 2
        topics(run_name, BY_MERCHANT)
        expected, _ = offline_twin(spec, events)
        base = len(list(tmp_path.glob("worker-*.log")))
        if mode == "kill9":
            records = kill9_midstream(
                kafka, spec, BY_MERCHANT, events, start_worker, 400, (250, 500), kills=2,
                # The restarted worker has the killed one's identity: it aborts the
                # transaction left open at once (the catch-up test's workers do not).
                env={"STREAMLEARN_PROCESSING_GUARANTEE": "exactly_once",
                     "STREAMLEARN_TRANSACTIONAL_ID": "merchant-worker"}, rate=140)
            log = worker_log(tmp_path, base + 2)
            assert "restored the feature state" in log and "merchant entities" in log, log
            assert "without writing" in log, "the restore replayed to the committed offsets"
            assert_once(records, "served")
        else:
            # Real time: the stream already flows when the worker starts (a partition
            # silent for STREAMLEARN_IDLE_AFTER before its first event is not waited for).
            producer = threading.Thread(target=produce, args=(
                kafka, spec.events_topic, events, None if mode == "backlog" else 300))
            producer.start()
            if mode == "backlog":
                producer.join()
            worker = start_worker(BY_MERCHANT, run_name, SETTINGS)
            producer.join()
            records = served_all(kafka, spec.served_topic, set(expected),
                                 alive=lambda w=worker: w.poll() is None)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
            log = worker_log(tmp_path, base)
        wrong = [r["event_id"] for r in records if r["x"] != expected[r["event_id"]]]
        assert not wrong, (mode, wrong[:3], [expected[i] for i in wrong[:3]], log[-3000:])
        assert all("merchant_n_2m" in r["x"] for r in records)
        if mode == "kill9":
            out = predictions(kafka, spec.predictions_topic)
            assert_once(out, "predictions")
            assert {r["event_id"] for r in out} == set(expected)
            examples = [orjson.loads(r.value) for r in read_to_end(kafka, spec.training_topic)]
            assert_once([e for e in examples if not is_watermark(e)], "training examples")


def assert_once(records: list[dict], what: str) -> None:
    """Each event id exactly once: what a read_committed reader must see under exactly-once."""
    counts = Counter(r["event_id"] for r in records)
    twice = [i for i, n in counts.items() if n > 1]
    assert not twice, f"{len(twice)} {what} seen more than once, e.g. {twice[:3]}"
