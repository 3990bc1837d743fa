"""Catch-up equals real time (guarantee 8), and the scale-out learner survives kill -9.

One schedule of events and delayed labels, on four partitions with two workers, is
published three ways: (a) in real time, the workers running; (b) all of it before the
workers start (a backlog); (c) in real time under exactly-once, with the active learner's
worker SIGKILLed twice (and restarted). The label outcomes (from the joins' checkpoints), the
learner's example sequence, the drift events and the final model must be identical, and
equal to what the schedule says; under exactly-once a ``read_committed`` reader sees every
prediction, served record, example and drift event once:

- 20 s label TTL, events 1 s apart in event time, every boundary >= 3 s (0.15 TTL) from a
  deadline: labels on time (0-17 s after the event), twice (both on time), late (23-35 s
  after), never, and 20 orphans (ids never served);
- events partition 3 gets no event (an idle events partition: nothing may wait for it) and
  labels partition 2 no label (a silent labels partition: its served records still expire);
- the last minute has on-time labels only, so no outcome depends on where the stream ends.
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
from kafka import KafkaProducer

from streamlearn.features.offline import key_partition
from streamlearn.models.snapshot import GLOBAL_MODEL, claim_key
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.tools.tail import read_to_end

from .conftest import free_port, worker_log
from .test_drift import ConceptReference
from .test_global_learner import (
    DELAYED,
    START_MS,
    assert_served_by_prefix_models,
    final_model,
    learned,
    learner_port,
    training,
)
from .topics import predictions, wait_for_predictions, wait_until

EVENTS = 1200
TTL_S = 20
SETTINGS = {"STREAMLEARN_PUBLISH_INTERVAL": "0.3", "STREAMLEARN_BATCH_SIZE": "50",
            "STREAMLEARN_SNAPSHOT_EVERY": "200", "STREAMLEARN_SNAPSHOT_INTERVAL": "2"}
OUTCOMES = ("joined", "late", "orphan", "duplicate", "expired")
EXACTLY_ONCE = {"STREAMLEARN_PROCESSING_GUARANTEE": "exactly_once",
                "STREAMLEARN_SESSION_TIMEOUT": "6"}


def schedule(seed: int) -> tuple[list[dict], list[dict], dict[str, int]]:
    """Events, labels (in event-time order of publication) and the outcomes they must give."""
    rng = random.Random(seed)
    events, labels = [], []
    expected = dict.fromkeys(OUTCOMES, 0)
    end = START_MS + (EVENTS - 1) * 1000
    n = 0
    for i in range(EVENTS):
        t = START_MS + i * 1000
        while True:  # an id for partition 0-2; partition 2 nothing in [end - 60 s, end - 5 s)
            event_id, n = f"e{n}", n + 1
            p = key_partition(event_id, 4)
            if p != 3 and not (p == 2 and end - 60_000 <= t < end - 5_000):
                break
        events.append({"event_id": event_id, "time": t, **features(rng)})
        if p == 2:  # its labels partition stays silent: the record expires (or, in the tail,
            if t < end - 60_000:  # waits)
                expected["expired"] += 1
            continue
        tail = t >= end - 60_000
        roll = 0.0 if tail else rng.random()
        if roll < 0.85:
            labels.append(label(event_id, t + rng.randint(0, 17_000), rng))
            expected["joined"] += 1
        elif roll < 0.89:
            first = rng.randint(0, 8_000)
            labels += [label(event_id, t + first, rng),
                       label(event_id, t + first + rng.randint(1, 9_000), rng)]
            expected["joined"] += 1
            expected["duplicate"] += 1
        elif roll < 0.93:
            labels.append(label(event_id, t + rng.randint(23_000, 35_000), rng))
            expected["late"] += 1
            expected["expired"] += 1
        else:
            expected["expired"] += 1
    ghosts = [g for g in (f"ghost{k}" for k in range(200)) if key_partition(g, 4) in (0, 1)]
    for ghost in ghosts[:20]:
        labels.append(label(ghost, START_MS + rng.randint(0, EVENTS - 120) * 1000 + 500, rng))
        expected["orphan"] += 1
    return events, sorted(labels, key=lambda la: la["time"]), expected


def features(rng: random.Random) -> dict:
    return {"empty_server_form_handler": rng.random(), "popup_window": rng.random(),
            "https": rng.random(), "request_from_other_domain": rng.random(),
            "anchor_from_other_domain": rng.random(), "is_popular": rng.random(),
            "long_url": rng.random(), "age_of_domain": rng.randint(0, 1),
            "ip_in_url": rng.randint(0, 1)}


def label(event_id: str, t: int, rng: random.Random) -> dict:
    return {"event_id": event_id, "label": rng.random() < 0.4, "time": t}


def publish(kafka: str, name: str, events: list[dict], labels: list[dict],
            rate: float | None = None) -> None:
    """Events and labels interleaved in event-time order, as a live system sends them;
    ``rate`` records a second (None: as fast as they go)."""
    stream = sorted([(e["time"], 0, e) for e in events] + [(la["time"], 1, la) for la in labels],
                    key=lambda r: (r[0], r[1]))
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=5)
    started = time.monotonic()
    for i, (_, kind, record) in enumerate(stream):
        topic = name if kind == 0 else f"{name}.labels"
        producer.send(topic, key=record["event_id"].encode(), value=orjson.dumps(record))
        if rate is not None and i % 20 == 19:
            time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
    producer.flush()
    producer.close()


def join_outcomes(kafka: str, spec) -> dict[str, int]:
    """The label joins' outcome counts, as their last checkpoints in ``<name>.state`` keep
    them (a restart neither loses nor repeats any)."""
    metas: dict[str, dict] = {}
    for record in read_to_end(kafka, spec.state_topic):
        key = record.key.decode()
        if re.fullmatch(r"join/\d+", key) and record.value:
            metas[key] = orjson.loads(record.value)
    return {o: sum(m["counts"][o] for m in metas.values()) for o in OUTCOMES}


def run(kafka, name, topics, start_worker, tmp_path: Path, mode: str, seed: int = 21):
    """One way of publishing the schedule; (outcomes, example ids, final model, extras)."""
    pipeline_file = tmp_path / f"catch_up_{mode}.py"
    pipeline_file.write_text(DELAYED.read_text().replace("partitions=2", "partitions=4")
                             .replace('label_ttl="1h"', f'label_ttl="{TTL_S}s"'))
    spec = load_pipeline(pipeline_file).renamed(name)
    topics(name, pipeline_file)
    events, labels, expected = schedule(seed)
    ports = [free_port(), free_port()]
    base = len(list(tmp_path.glob("worker-*.log")))  # worker i logs to worker-<base+i>
    if mode == "backlog":
        publish(kafka, name, events, labels)
    publisher = threading.Thread(target=publish, args=(
        kafka, name, events, labels, 90.0 if mode == "kill" else 150.0))
    if mode != "backlog":
        publisher.start()  # the workers join a stream already flowing: it never pauses
    settings = {**SETTINGS, **(EXACTLY_ONCE if mode == "kill" else {})}

    def slot(i: int) -> dict[str, str]:
        """Worker slot i's identity: its restart aborts the transaction it left open at
        once (test_rebalance covers the broker aborting it after the timeout)."""
        return {**settings, "STREAMLEARN_TRANSACTIONAL_ID": f"slot-{i}"}

    workers = [start_worker(pipeline_file, name, slot(i), metrics_port=p)
               for i, p in enumerate(ports)]
    slots = [0, 1]
    alive = list(range(2))
    def active_past(n: int) -> int | None:
        """The active learner's port once it has learned more than ``n`` examples (the
        group may move the learner while the workers start: asked each time)."""
        port = learner_port([ports[i] for i in alive], name)
        return port if port is not None and learned(port, name) > n else None

    if mode == "kill":
        for before in (100, 300):
            active = wait_until(lambda b=before: active_past(b), 60,
                                f"the active learner past {before} examples")
            assert publisher.is_alive(), "the kill must land while records still flow"
            victim = ports.index(active)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait(timeout=30)
            alive.remove(victim)
            ports.append(free_port())
            slots.append(slots[victim])
            workers.append(start_worker(pipeline_file, name, slot(slots[victim]),
                                        metrics_port=ports[-1]))
            alive.append(len(workers) - 1)
    if publisher.is_alive():
        publisher.join()
    ids = {e["event_id"] for e in events}
    wait_for_predictions(kafka, spec.predictions_topic, ids, 180,
                         alive=lambda: all(workers[i].poll() is None for i in alive))
    joined = expected["joined"]
    wait_until(lambda: learner_port([ports[i] for i in alive], name), 60, "an active learner")
    wait_until(lambda: max(learned(ports[i], name) for i in alive) == joined, 90,
               f"{joined} examples learned")
    for i in alive:
        workers[i].send_signal(signal.SIGTERM)  # clean stops checkpoint and publish
    for i in alive:
        assert workers[i].wait(timeout=60) == 0, worker_log(tmp_path, base + i)[-3000:]
    examples = training(kafka, spec)
    return spec, events, expected, examples, [base + i for i in range(len(workers))]


def drift_events(kafka, spec) -> list[tuple]:
    """(detector, level, at_example) of each concept drift event, in the topic's order."""
    return [(d["detector"], d["level"], d["at_example"]) for d in
            (orjson.loads(r.value) for r in read_to_end(kafka, spec.drift_topic))
            if d["kind"] == "concept"]


def offline_drift(examples: list[dict]) -> list[tuple]:
    """Where River's ADWIN and DDM fire on the served predictions' errors, in the learner's
    order (what the learner scores without candidates: the prediction the user got, so the
    positions depend on which model served, and differ between the modes)."""
    reference = ConceptReference()
    for position, example in enumerate(examples, start=1):
        served = example["predictions"][example["champion"]]["prediction"]
        if served is not None:
            reference.update(0.0 if served == example["label"] else 1.0, position)
    return reference.fired


def assert_each_once(kafka, spec) -> None:
    """What a read_committed reader sees under exactly-once: no record twice."""
    for topic in (spec.predictions_topic, spec.served_topic, spec.training_topic):
        ids = Counter(orjson.loads(r.value).get("event_id")
                      for r in read_to_end(kafka, topic))
        ids.pop(None, None)  # watermark records
        twice = [i for i, n in ids.items() if n > 1]
        assert not twice, f"{topic}: {len(twice)} event ids more than once, e.g. {twice[:3]}"
    drift = drift_events(kafka, spec)
    assert len(drift) == len(set(drift)), f"{spec.drift_topic}: an event twice"


def probe_predictions(kafka, spec) -> list:
    model = final_model(kafka, spec)
    rng = random.Random(5)
    return [model.estimator.predict_proba_one(features(rng)) for _ in range(200)]


def test_a_backlog_and_a_kill_give_what_real_time_gives(
        kafka, name, topics, start_worker, tmp_path: Path):
    results = {}
    for mode in ("real_time", "backlog", "kill"):
        run_name = f"{name}-{mode}"
        spec, events, expected, examples, alive = run(
            kafka, run_name, topics, start_worker, tmp_path, mode)
        outcomes = join_outcomes(kafka, spec)
        assert outcomes == expected, (mode, outcomes, expected)
        results[mode] = ([e["event_id"] for e in examples], probe_predictions(kafka, spec))
        fired = drift_events(kafka, spec)
        assert sorted(fired) == sorted(offline_drift(examples)), mode
        print(f"{mode}: {len(examples)} examples, outcomes {outcomes}, {len(fired)} drift "
              "events where River's fire offline")
        if mode == "kill":
            assert_each_once(kafka, spec)
            check_the_standby_took_over(kafka, spec, events, examples, tmp_path, alive)
    assert results["backlog"][0] == results["real_time"][0], "the learner's order differs"
    assert results["kill"][0] == results["real_time"][0], "the learner's order differs"
    assert results["backlog"][1] == results["real_time"][1] == results["kill"][1]


def check_the_standby_took_over(kafka, spec, events, examples, tmp_path: Path,
                                logs: list[int]) -> None:
    """Every served prediction == the offline model after ``model_version`` examples; never
    two active learners; each takeover resumed from the killed learner's newest snapshot."""
    x_of = {e["event_id"]: {k: v for k, v in e.items() if k in spec.features} for e in events}
    assert_served_by_prefix_models(spec, predictions(kafka, spec.predictions_topic), examples,
                                   x_of)
    claims, newest, manifests = [], 0, []
    for record in read_to_end(kafka, spec.models_topic):
        key = record.key.decode()
        if key == claim_key(GLOBAL_MODEL):
            claims.append(orjson.loads(record.value)["generation"])
            newest = claims[-1]
        elif key.startswith(f"{GLOBAL_MODEL}/") and key.endswith("/manifest") and record.value:
            manifest = orjson.loads(record.value)
            assert manifest["generation"] == newest, "a fenced learner published"
            manifests.append(manifest)
    assert claims == sorted(set(claims)) and len(claims) >= 3
    takeovers = [resumed for i in logs for resumed in re.finditer(
        r"active learner \(generation (\d+)\): restored snapshot (\d+) \((\d+) examples\); "
        r"resuming \S+ at offset (\d+)", worker_log(tmp_path, i))]
    assert len(takeovers) >= 2, "each kill of the active learner: a takeover"
    for resumed in takeovers:
        before = [m for m in manifests if m["generation"] < int(resumed[1])]
        assert before and before[-1]["snapshot_id"] == int(resumed[2])
        assert before[-1]["offsets"][spec.training_topic]["0"] == int(resumed[4])
