"""Delayed labels and one global model (guarantees 4 and 5), through a real broker.

Phishing events on their own topic, their labels on ``<name>.labels`` with seeded random
delays (event time). Every served prediction must equal what an offline model predicts
after learning the first ``model_version`` examples of ``<name>.training`` (deduplicated by
event id, in the learner's order: ``streams.merge.in_order``), and the final model must
equal an offline model learned on the whole training topic. (Two workers on four
partitions, the active learner's worker SIGKILLed mid-stream and its standby taking over:
``test_catch_up``.)
"""

from __future__ import annotations

import random
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer
from river import datasets, evaluate, metrics, utils

from streamlearn.kafka.snapshots import read_versions
from streamlearn.models.snapshot import GLOBAL_MODEL, restore
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.streams.merge import in_order
from streamlearn.tools.tail import read_to_end

from .conftest import MODEL_KEY, ROOT, free_port
from .topics import first_per_event, predictions, wait_for_predictions, wait_until

DELAYED = ROOT / "tests" / "integration" / "pipelines" / "delayed.py"
START_MS = 1_767_225_600_000
SETTINGS = {"STREAMLEARN_PUBLISH_INTERVAL": "0.3", "STREAMLEARN_BATCH_SIZE": "50",
            "STREAMLEARN_SNAPSHOT_EVERY": "200", "STREAMLEARN_SNAPSHOT_INTERVAL": "2"}


def phishing_stream(seed: int, max_delay_ms: int) -> tuple[list[dict], list[dict]]:
    """Events one second apart in event time, and each one's label after a random delay."""
    rng = random.Random(seed)
    events, labels = [], []
    for i, (x, y) in enumerate(datasets.Phishing()):
        t = START_MS + i * 1000
        events.append({"event_id": f"e{i}", "time": t, **x})
        labels.append({"event_id": f"e{i}", "label": y, "time": t + rng.randint(0, max_delay_ms)})
    return events, labels


def produce(kafka: str, name: str, events: list[dict], labels: list[dict],
            pause_every: int = 25) -> None:
    """Events and labels in event-time order, as a live system would send them."""
    stream = sorted([(e["time"], 0, e) for e in events] + [(la["time"], 1, la) for la in labels],
                    key=lambda r: (r[0], r[1]))
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")  # murmur2, like the worker
    for i, (_, kind, record) in enumerate(stream):
        topic = name if kind == 0 else f"{name}.labels"
        producer.send(topic, key=record["event_id"].encode(), value=orjson.dumps(record))
        if i % pause_every == pause_every - 1:
            producer.flush()
            time.sleep(0.03)
    producer.flush()
    producer.close()


def training(kafka: str, spec) -> list[dict]:
    """The learner's examples: the training topic in the learner's order (``in_order``),
    the first copy of each event."""
    seen, examples = set(), []
    records = [orjson.loads(r.value) for r in read_to_end(kafka, spec.training_topic)]
    for example in in_order(records, lambda r: r["event_id"]):
        if example["event_id"] not in seen:
            seen.add(example["event_id"])
            examples.append(example)
    return examples


def as_served(proba: dict) -> dict:
    """Class probabilities as the prediction record carries them (JSON keys)."""
    return orjson.loads(orjson.dumps(proba, option=orjson.OPT_NON_STR_KEYS))


def assert_served_by_prefix_models(spec, served: list[dict], examples: list[dict],
                                   x_of: dict[str, dict]) -> None:
    """Each prediction == the offline model that learned the first model_version examples."""
    by_version: dict[int, list[dict]] = {}
    for prediction in served:
        by_version.setdefault(prediction["model_version"], []).append(prediction)
    assert max(by_version) <= len(examples)
    assert len(by_version) > 1, "the predictors never served a published snapshot"
    model = spec.model()
    for version in range(max(by_version) + 1):
        for prediction in by_version.get(version, []):
            proba = model.predict_proba_one(x_of[prediction["event_id"]])
            assert prediction["proba"] == as_served(proba), (prediction, version)
        if version < len(examples):
            model.learn_one(examples[version]["x"], examples[version]["label"])


def final_model(kafka: str, spec) -> Any:
    versions = read_versions({"bootstrap.servers": kafka}, spec.models_topic, [GLOBAL_MODEL])
    stored = versions[GLOBAL_MODEL]
    sid = max(i for i, v in stored.items() if v.manifest)
    version = stored[sid]
    candidates = restore(version.manifest, [version.chunks[i] for i in sorted(version.chunks)],
                         key=MODEL_KEY.encode(), fingerprint=spec.fingerprint())
    return candidates.models[candidates.champion]  # the one model, as a candidate set


def assert_final_model_is_offline(kafka: str, spec, examples: list[dict],
                                  probe: list[dict]) -> None:
    served = final_model(kafka, spec)
    assert served.version == len(examples)  # every example learned once, none twice
    offline = spec.model()
    for example in examples:
        offline.learn_one(example["x"], example["label"])
    for x in probe:
        assert served.estimator.predict_proba_one(x) == offline.predict_proba_one(x)


def assert_metrics_are_rivers_over_the_served(kafka: str, spec, examples: list[dict]) -> None:
    """The learner's metrics (prequential with delay: each example scored on what was
    served for it) == River's metrics fed the served predictions in training order."""
    chosen = [metrics.ROCAUC(), metrics.Accuracy()]
    rolling = [utils.Rolling(metrics.ROCAUC, window_size=1000),
               utils.Rolling(metrics.Accuracy, window_size=1000)]
    for example in examples:
        served = example["predictions"][example["champion"]]
        if served["prediction"] is None:
            continue
        proba = {key == "true": p for key, p in served["proba"].items()}
        for metric, window in zip(chosen, rolling, strict=True):
            y_pred = served["prediction"] if metric.requires_labels else proba
            metric.update(example["label"], y_pred)
            window.update(example["label"], y_pred)
    scorer = final_model(kafka, spec).scorer
    assert scorer.names == ("roc_auc", "accuracy")
    assert scorer.values() == [m.get() for m in chosen]
    assert scorer.rolling_values() == [m.get() for m in rolling]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def sample(text: str, metric: str) -> float:
    found = re.search(rf"^{re.escape(metric)} (\S+)$", text, re.M)
    return float(found[1]) if found else 0.0


def test_delayed_labels_served_predictions_equal_offline_prefix_models(
        kafka, name, topics, start_worker, record_property):
    spec = load_pipeline(DELAYED).renamed(name)
    topics(name, DELAYED)
    events, labels = phishing_stream(seed=7, max_delay_ms=120_000)
    x_of = {e["event_id"]: {k: v for k, v in e.items() if k in spec.features} for e in events}
    port = free_port()
    worker = start_worker(DELAYED, name, SETTINGS, metrics_port=port)
    wait_until(lambda: learner_port([port], name), 60, "the worker's learner")
    produce(kafka, name, events, labels)
    ids = {e["event_id"] for e in events}
    wait_for_predictions(kafka, spec.predictions_topic, ids, 120,
                         alive=lambda: worker.poll() is None)
    wait_until(lambda: len(training(kafka, spec)) == len(events), 60, "every example joined")
    wait_until(lambda: learned(port, name) == len(events), 60, "every example learned")
    worker.send_signal(signal.SIGTERM)  # a clean stop publishes the last snapshot
    assert worker.wait(timeout=60) == 0

    examples = training(kafka, spec)
    served = predictions(kafka, spec.predictions_topic)
    assert_served_by_prefix_models(spec, served, examples, x_of)
    assert_final_model_is_offline(kafka, spec, examples, list(x_of.values())[:300])
    assert_metrics_are_rivers_over_the_served(kafka, spec, examples)
    assert {e["label_time"] - x["time"] for e, x in zip(
        sorted(examples, key=lambda e: int(e["event_id"][1:])), events, strict=True)} == {
        la["time"] - e["time"] for la, e in zip(labels, events, strict=True)}

    # Reported, not asserted: the served accuracy next to River's delayed evaluation.
    kept = first_per_event(served)
    truth = {la["event_id"]: la["label"] for la in labels}
    served_accuracy = sum(kept[i]["prediction"] == truth[i] for i in ids) / len(ids)
    time_of = {id(x_of[e["event_id"]]): e["time"] for e in events}
    delay_of = {id(x_of[e["event_id"]]): la["time"] - e["time"]
                for e, la in zip(events, labels, strict=True)}
    river_accuracy = evaluate.progressive_val_score(
        [(x_of[e["event_id"]], la["label"]) for e, la in zip(events, labels, strict=True)],
        spec.model(), metrics.Accuracy(), moment=lambda x: time_of[id(x)],
        delay=lambda x, y: delay_of[id(x)]).get()
    record_property("served_accuracy", served_accuracy)
    record_property("river_delayed_accuracy", river_accuracy)
    print(f"served accuracy {served_accuracy:.4f}; River progressive_val_score with the same "
          f"delays {river_accuracy:.4f}")


def learned(port: int, name: str) -> float:
    """Examples the active learner on ``port`` has learned (its gauge, set each second)."""
    return sample(scrape(port), f'streamlearn_learner_examples{{pipeline="{name}"}}')


def learner_port(ports: list[int], name: str) -> int | None:
    """The metrics port of the worker whose learner is active."""
    for port in ports:
        try:
            if sample(scrape(port), f'streamlearn_learner_active{{pipeline="{name}"}}') == 1:
                return port
        except OSError:
            continue
    return None


def test_late_orphan_duplicate_and_bad_labels_are_counted_exactly(
        kafka, name, topics, start_worker, tmp_path: Path):
    """One partition (one order of labels), a 5 min TTL over 10 min of events.

    Phase 1 serves every event and joins the on-time labels; ids picked from minutes 1-5
    get no label, so their served records expire then (and are remembered one more TTL).
    Phase 2 sends, in this order: second labels for events joined in the last 3 minutes,
    labels for ids never served, the missing labels (now late), three unusable records,
    and a last duplicate one second after the newest time seen, whose move of the watermark
    turns the unknown ids' labels into orphans.
    """
    pipeline_file = tmp_path / "one_partition.py"
    pipeline_file.write_text(DELAYED.read_text().replace("partitions=2", "partitions=1")
                             .replace('label_ttl="1h"', 'label_ttl="5m"'))
    spec = load_pipeline(pipeline_file).renamed(name)
    topics(name, pipeline_file)
    events, labels = phishing_stream(seed=3, max_delay_ms=30_000)
    events, labels = events[:600], labels[:600]
    late = {e["event_id"] for e in events[60:300:12]}
    on_time = [la for la in labels if la["event_id"] not in late]
    port = free_port()
    worker = start_worker(pipeline_file, name, SETTINGS, metrics_port=port)
    wait_until(lambda: learner_port([port], name), 60, "the worker's learner")
    produce(kafka, name, events, on_time)
    wait_for_predictions(kafka, spec.predictions_topic, {e["event_id"] for e in events}, 120,
                         alive=lambda: worker.poll() is None)
    joined = f'streamlearn_labels_total{{outcome="joined",pipeline="{name}"}}'
    wait_until(lambda: sample(scrape(port), joined) == len(on_time), 60, "the on-time joins")

    newest = max(r["time"] for r in [*events, *on_time])
    duplicates = [{**la, "label": not la["label"]} for la in on_time
                  if la["time"] > newest - 180_000][::5]
    orphans = [{"event_id": f"ghost-{i}", "label": True, "time": START_MS + i * 7000}
               for i in range(13)]
    late_labels = [{**la, "time": e["time"] + 301_000}
                   for la, e in zip(labels, events, strict=True) if la["event_id"] in late]
    tick = {**on_time[-1], "time": newest + 1000}
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for record in [*duplicates, *orphans, *late_labels]:
        producer.send(spec.labels_topic, key=record["event_id"].encode(),
                      value=orjson.dumps(record))
    for raw in (b"{not json", b'{"label": true}', b'{"event_id": "e1", "label": "yes"}'):
        producer.send(spec.labels_topic, key=b"bad", value=raw)
    producer.send(spec.labels_topic, key=tick["event_id"].encode(), value=orjson.dumps(tick))
    producer.flush()
    producer.close()

    def counted() -> dict[str, float] | None:
        text = scrape(port)
        counts = {o: sample(text, f'streamlearn_labels_total{{outcome="{o}",pipeline="{name}"}}')
                  for o in ("joined", "late", "orphan", "duplicate", "expired")}
        return counts if counts["duplicate"] == len(duplicates) + 1 else None

    counts = wait_until(counted, 60, "the last label")
    assert counts == {"joined": len(on_time), "late": len(late), "orphan": len(orphans),
                      "duplicate": len(duplicates) + 1, "expired": len(late)}
    reasons = sorted(
        dict(r.headers)["streamlearn.error.reason"].decode()
        for r in read_to_end(kafka, spec.dlq_topic))
    assert reasons == ["bad_type", "invalid_json", "missing_field"]
    # A duplicate never makes the model learn twice: one example per joined event.
    assert sorted(e["event_id"] for e in training(kafka, spec)) == sorted(
        la["event_id"] for la in on_time)
    assert worker.poll() is None
