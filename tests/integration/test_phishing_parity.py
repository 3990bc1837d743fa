"""Guarantee 1: replaying Phishing through real Kafka scores exactly as River does.

The pipeline learns in one partition from the labels in its events (the default learning
mode): its metrics as the worker exports them, its registry versions (``models list`` and
``show``) and ``streamlearn report`` (from the served records) all carry River's figures.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
from river import datasets, evaluate, metrics

from streamlearn.config import Settings
from streamlearn.kafka.clients import kafka_config
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.tools.predictions import prequential_accuracy
from streamlearn.tools.produce import ReplayOptions, replay
from streamlearn.tools.registry import read_registries
from streamlearn.tools.report import read_report
from streamlearn.tools.sources import iter_events

from .conftest import EXAMPLE, ROOT, worker_log
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

    # Its history: a clean stop snapshots the model; that version carries the metrics.
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, worker_log(tmp_path)
    listing = cli(worker_env, "models", "list", str(EXAMPLE), "--name", name)
    assert "roc_auc / rolling" in listing and "accuracy / rolling" in listing, listing
    newest = max(read_registries(spec, Settings.from_env(worker_env))["partition-0"].versions)
    shown = orjson.loads(cli(worker_env, "models", "show", str(EXAMPLE), "--name", name,
                             str(newest)))
    assert shown["examples"] == sent and shown["metric"] == "roc_auc"
    assert {m: v[0] for m, v in shown["metrics"].items()} == expected
    refused = cli(worker_env, "models", "rollback", str(EXAMPLE), "--name", name, ok=False)
    assert refused.count("\n") == 1 and "learning='global'" in refused, refused

    # The report replays the served records (they carry their label): River's figures.
    report = read_report(spec, kafka_config(Settings.from_env(worker_env), "report-test"))
    [line] = report.summary().candidates
    assert line.name == "partition 0" and line.scored == sent
    assert {m: v[0] for m, v in line.metrics.items()} == expected
    cli(worker_env, "report", str(EXAMPLE), "--name", name, "--to", str(tmp_path / "r"))
    assert "roc_auc" in (tmp_path / "r.html").read_text()


def cli(env: dict[str, str], *args: str, ok: bool = True) -> str:
    """``streamlearn ARGS``: its stdout, or (``ok`` False: it must fail) its stderr."""
    done = subprocess.run([sys.executable, "-m", "streamlearn", *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert (done.returncode == 0) == ok, (done.stdout, done.stderr)
    return done.stdout if ok else done.stderr
