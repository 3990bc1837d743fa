"""Guarantee 1: replaying Phishing through real Kafka scores exactly as River does."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from river import datasets, evaluate, metrics

from streamlearn.spec.pipeline import load_pipeline
from streamlearn.tools.predictions import prequential_accuracy
from streamlearn.tools.produce import ReplayOptions, replay
from streamlearn.tools.sources import iter_events

from .conftest import EXAMPLE, worker_log
from .topics import final_scores, predictions, rivers_scores, wait_for_predictions


def test_phishing_replay_matches_progressive_val_score(kafka, name, topics, start_worker,
                                                      worker_env, tmp_path: Path):
    spec = load_pipeline(EXAMPLE).renamed(name)
    topics(name)
    events = list(iter_events("river:Phishing", label_field="is_phishing"))
    sent = replay(events, kafka, ReplayOptions(topic=spec.events_topic, id_prefix="ev"))
    assert sent == 1250
    worker = start_worker(EXAMPLE, name)
    ids = {f"ev-{i}" for i in range(sent)}
    wait_for_predictions(kafka, spec.predictions_topic, ids, 120,
                         alive=lambda: worker.poll() is None)
    assert worker.poll() is None, worker_log(tmp_path)

    served = predictions(kafka, spec.predictions_topic)  # up to the end offset: duplicates too
    per_event = Counter(p["event_id"] for p in served)
    assert set(per_event) == ids
    assert max(per_event.values()) == 1, "exactly one prediction per event"

    by_id = {p["event_id"]: p for p in served}
    labels = {f"ev-{i}": e["is_phishing"] for i, e in enumerate(events)}
    reference = evaluate.progressive_val_score(
        datasets.Phishing(), spec.model(), metrics.Accuracy()
    ).get()
    assert prequential_accuracy(labels, by_id) == reference
    assert [by_id[f"ev-{i}"]["model_version"] for i in range(sent)] == list(range(sent))

    # The pipeline's default metrics (a boolean label: ROC AUC, then accuracy), as the
    # worker exports them, == River's progressive_val_score with each.
    expected = rivers_scores(datasets.Phishing, spec.model,
                             [("roc_auc", metrics.ROCAUC()), ("accuracy", metrics.Accuracy())])
    exported = final_scores(worker_env["STREAMLEARN_METRICS_PORT"], name, sent)
    assert {k: exported[k] for k in expected} == expected
