"""``streamlearn bootstrap`` then ``run``: the first live event is served warm.

The history (a Parquet file) is learned and published by the real command; a worker then
serves live events with the bootstrapped model (same probabilities as a model trained
offline on the history) and with features that count the history's events (equal to the
offline twin run over history and live events together).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from streamlearn.features.offline import OfflineRun
from streamlearn.kafka.snapshots import read_versions
from streamlearn.models.online import OnlineModel
from streamlearn.models.snapshot import GLOBAL_MODEL, partition_model, restore
from streamlearn.spec.pipeline import load_pipeline

from .conftest import MODEL_KEY, ROOT, worker_log
from .test_features_online import CARDS, card_stream, produce, served_all
from .topics import wait_until


def bootstrap(history: Path, name: str, env: dict[str, str], pipeline: Path = CARDS
              ) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamlearn", "bootstrap", str(pipeline), "--name", name,
         "--history", str(history)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
    )


SHADOW = "small"
CANDIDATE_MODELS = ('models={"tree": tree.HoeffdingTreeClassifier, '
                    f'"{SHADOW}": lambda: tree.HoeffdingTreeClassifier(grace_period=50)}},')


@pytest.mark.parametrize("learning", ["per_partition", "global", "candidates"])
def test_bootstrap_then_run_serves_the_first_event_warm(
        kafka, name, start_worker, worker_env, tmp_path: Path, learning: str):
    pipeline = tmp_path / "cards.py"
    text = CARDS.read_text()
    if learning == "candidates":  # every candidate learns the history; the set is published
        text = text.replace("model=tree.HoeffdingTreeClassifier,", CANDIDATE_MODELS)
    pipeline.write_text(text.replace('learning="per_partition"', 'learning="global"'
                                     if learning == "candidates" else f'learning="{learning}"'))
    spec = load_pipeline(pipeline).renamed(name)
    model = partition_model(0) if learning == "per_partition" else GLOBAL_MODEL
    events = card_stream(1500, seed=5)
    history, live = events[:1200], events[1200:]
    path = tmp_path / "history.parquet"
    pd.DataFrame(history).to_parquet(path)

    done = bootstrap(path, name, worker_env, pipeline)
    assert done.returncode == 0, done.stdout + done.stderr
    # Every metric of the pipeline (a boolean label: ROC AUC, then accuracy), prequential
    # and rolling, over the history.
    assert "roc_auc" in done.stdout and "rolling accuracy" in done.stdout, done.stdout
    assert "published snapshot" in done.stdout
    if learning == "candidates":
        assert f"candidate {SHADOW}: roc_auc" in done.stdout, done.stdout
    assert (tmp_path / "history.prequential.png").stat().st_size > 10_000
    versions = read_versions({"bootstrap.servers": kafka}, spec.models_topic,
                             [partition_model(0)])[partition_model(0)]
    version = versions[1]
    published = restore(version.manifest, [version.chunks[i] for i in sorted(version.chunks)],
                        key=MODEL_KEY.encode(), fingerprint=spec.fingerprint())
    if learning == "per_partition":  # a version with its metrics (`models list`)
        assert version.manifest["action"] == {"kind": "bootstrap"}
        assert version.manifest["metrics"] == published.scorer.summary()
    watch = published.data_drift  # global learning: the partition's state holds it
    assert watch is not None and watch.watches["amount"].reference.sum() == len(history), (
        "the history is the data-drift reference")
    again = bootstrap(path, name, worker_env, pipeline)
    assert again.returncode == 1 and "already has model snapshots" in again.stderr

    produce(kafka, spec.events_topic, live)
    worker = start_worker(pipeline, name)
    records = served_all(kafka, spec.served_topic, {e["tx_id"] for e in live},
                         alive=lambda: worker.poll() is None)
    restored = ("restored snapshot 1 (1200 examples)" if learning == "per_partition" else
                "active learner (generation 1): restored snapshot 1 (1200 examples)")
    # The learner's group assigns it on its own schedule, maybe after the predictors served.
    wait_until(lambda: restored in worker_log(tmp_path) or worker.poll() is not None, 60,
               f"the log line {restored!r}")
    assert restored in worker_log(tmp_path), worker_log(tmp_path)
    assert model in read_versions({"bootstrap.servers": kafka}, spec.models_topic, [model])

    ordered = sorted(history, key=lambda e: e["time"])  # bootstrap learns in event-time order
    rows = list(OfflineRun(spec).rows(enumerate(ordered + live)))
    expected = {(ordered + live)[r.index]["tx_id"]: r.x for r in rows}
    assert all(r["x"] == expected[r["event_id"]] for r in records), "features include history"

    reference = OnlineModel(spec.model())
    for row in rows[: len(history)]:
        reference.learn(row.x, row.label, served=None)
    firsts = [r for r in records if r["predictions"][r["champion"]]["model_version"] == 1200]
    if learning == "per_partition":
        assert len(firsts) == spec.partitions, "each partition's first event, served warm"
    else:  # the one global model serves every partition until its next snapshot
        assert firsts and records[0] in firsts, "the first event, served warm"
    for record in firsts:
        _, proba = reference.predict(record["x"])
        served = record["predictions"][record["champion"]]["proba"]
        assert served == {str(k).lower(): v for k, v in (proba or {}).items()}
    if learning == "candidates":  # the shadow learned the history too
        shadow = OnlineModel(spec.candidates()[SHADOW]())
        for row in rows[: len(history)]:
            shadow.learn(row.x, row.label, served=None)
        for record in firsts:
            _, proba = shadow.predict(record["x"])
            served = record["predictions"][SHADOW]
            assert served["model_version"] == len(history)
            assert served["proba"] == {str(k).lower(): v for k, v in (proba or {}).items()}
