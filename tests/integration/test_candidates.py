"""Candidates, a drift policy and the registry, through a real broker and worker.

Two candidates (``lr`` the champion, ``tree``) under the ``challenger`` policy. A seeded
stream whose concept flips half way makes the champion challenged and replaced: the
promotion is on ``<name>.drift``, in ``streamlearn models list`` and in the predictions, and
it happens at the example an offline replay of ``<name>.training`` through the learner's own
code says (state is a function of the log). A rollback command then serves the replaced
version again: its predictions on a probe set equal that version's, exactly; a tampered or
replayed command is refused. A stationary stream causes no promotion.
"""

from __future__ import annotations

import pickle
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import mlflow
import orjson
from kafka import KafkaProducer

from streamlearn.kafka.records import is_watermark
from streamlearn.kafka.snapshots import read_versions
from streamlearn.models.candidates import Candidates
from streamlearn.models.learner import Learner
from streamlearn.models.registry import encode_command
from streamlearn.models.snapshot import GLOBAL_MODEL, restore
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.tools.tail import read_to_end

from .conftest import MODEL_KEY, ROOT, free_port, worker_log
from .test_global_learner import as_served, learned, sample, scrape, training, wait_until
from .topics import predictions, wait_for_predictions

CANDIDATES = ROOT / "tests" / "integration" / "pipelines" / "candidates.py"
START_MS = 1_767_225_600_000
SETTINGS = {"STREAMLEARN_PUBLISH_INTERVAL": "0.3", "STREAMLEARN_BATCH_SIZE": "50"}
EVENTS = 4_000
FLIP_AT = 2_000
CUT = 3_000
"""The exactly-once test sends the stream up to this event, then the rest."""


def stream(seed: int, flip_at: int | None) -> tuple[list[dict], list[dict]]:
    """Events one second apart, each labelled 2 s later: y = a + b/2 > 0 with 5% noise, the
    other way round from ``flip_at`` on."""
    rng = random.Random(seed)
    events, labels = [], []
    for i in range(EVENTS):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        y = (a + b / 2 > 0) != (rng.random() < 0.05)
        if flip_at is not None and i >= flip_at:
            y = not y
        t = START_MS + i * 1000
        events.append({"event_id": f"e{i}", "time": t, "a": a, "b": b})
        labels.append({"event_id": f"e{i}", "label": y, "time": t + 2000})
    return events, labels


def send(kafka: str, name: str, records: list[tuple[str, dict]]) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for i, (topic, record) in enumerate(records):
        producer.send(topic, key=record["event_id"].encode(), value=orjson.dumps(record))
        if i % 50 == 49:
            producer.flush()
            time.sleep(0.02)  # a live feed: the predictors see published snapshots
    producer.flush()
    producer.close()


def in_time_order(name: str, events: list[dict], labels: list[dict]) -> list[tuple[str, dict]]:
    merged = [(e["time"], 0, name, e) for e in events]
    merged += [(la["time"], 1, f"{name}.labels", la) for la in labels]
    return [(topic, record) for _, _, topic, record in sorted(merged, key=lambda r: r[:2])]


def run_stream(kafka: str, name: str, topics, start_worker, seed: int, flip_at: int | None
               ) -> tuple[Any, Any, int]:
    """A worker of the candidates pipeline, once it has served and learned the stream."""
    spec = load_pipeline(CANDIDATES).renamed(name)
    topics(name, CANDIDATES)
    events, labels = stream(seed=seed, flip_at=flip_at)
    port = free_port()
    worker = start_worker(CANDIDATES, name, SETTINGS, metrics_port=port)
    send(kafka, name, in_time_order(name, events, labels))
    wait_for_predictions(kafka, spec.predictions_topic, {e["event_id"] for e in events}, 120,
                         alive=lambda: worker.poll() is None)
    wait_until(lambda: learned(port, name) == EVENTS, 90, "every example learned")
    return spec, worker, port


def drift_records(kafka: str, spec) -> list[dict]:
    return [orjson.loads(r.value) for r in read_to_end(kafka, spec.drift_topic)]


def replay(spec, examples: list[dict], command: tuple[int, int, Candidates] | None = None
           ) -> tuple[list[dict], Candidates]:
    """The learner's actions and final candidates, recomputed offline from the training
    topic by the learner's own code; ``command``: rollback 1 (the example count it took
    effect at, the version it restored and its candidates), applied there as the learner
    applies it."""
    learner = Learner(Candidates(spec.candidates(), policy=spec.policy(), scoring=spec.scoring),
                      spec.label_ttl_ms, score_served=False)
    actions = []

    def apply_command() -> None:
        at, target, version = command
        version.bind(spec.candidates())
        before = learner.candidates.ids[learner.candidates.champion]
        version.examples = learner.candidates.examples
        learner.candidates = version
        actions.append({"kind": "rollback", "at_example": at, "from": before,
                        "to": version.ids[version.champion],
                        "reason": f"command 1: version {target}"})

    for example in examples:
        if command is not None and learner.candidates.examples == command[0]:
            apply_command()
            command = None
        learner.learn(example)
        actions += [a.as_dict() for a in learner.actions if a.kind != "alert"]
        learner.actions.clear()
    if command is not None:
        apply_command()
    return actions, learner.candidates


def versions(kafka: str, spec) -> dict[int, Any]:
    stored = read_versions({"bootstrap.servers": kafka}, spec.models_topic, [GLOBAL_MODEL])
    return {sid: v for sid, v in stored[GLOBAL_MODEL].items() if v.manifest}


def restored(version, spec) -> Candidates:
    return restore(version.manifest, [version.chunks[i] for i in sorted(version.chunks)],
                   key=MODEL_KEY.encode(), fingerprint=spec.fingerprint())


def cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "streamlearn", *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_flipped_concept_promotes_a_challenger_and_rollback_restores_the_champion(
        kafka, name, topics, start_worker, worker_env, tmp_path, monkeypatch):
    spec, worker, port = run_stream(kafka, name, topics, start_worker, seed=3, flip_at=FLIP_AT)

    # The learner's actions are those its own code makes of the training topic, offline.
    examples = training(kafka, spec)
    assert len(examples) == EVENTS
    expected, _ = replay(spec, examples)
    promotions = [a for a in expected if a["kind"] == "promote"]
    assert promotions and promotions[0]["at_example"] > FLIP_AT, expected
    assert _actions(drift_records(kafka, spec)) == expected

    # Every served record carries the shadow's prediction; after the promotion the
    # predictions come from the new instance (its examples restart from the challenge).
    served = predictions(kafka, spec.predictions_topic)
    promote = promotions[0]
    assert {p["model"] for p in served} == {"lr"}
    last = served[-1]
    assert last["model_version"] < EVENTS - FLIP_AT
    shadow = next(r for r in (orjson.loads(m.value) for m in read_to_end(
        kafka, spec.served_topic)) if not is_watermark(r))
    assert set(shadow["predictions"]) == {"lr", "tree"}

    # The registry shows the promotion: a version made by it, marked promoted.
    listing = cli("models", "list", str(CANDIDATES), "--name", name, env=worker_env)
    assert f"promote ({promote['from']} -> {promote['to']})" in listing, listing
    by_id = versions(kafka, spec)
    promoted = [v for v in by_id.values() if (v.manifest.get("action") or {}).get("kind")
                == "promote"]
    replaced = promoted[-1].manifest["replaced"]
    assert replaced in by_id

    # The report marks it on each candidate's metric over the training examples.
    cli("report", str(CANDIDATES), "--name", name, "--to", str(tmp_path / "report"),
        env=worker_env)
    page = (tmp_path / "report.html").read_text()
    assert promote["to"] in page and "promote" in page
    assert (tmp_path / "report.png").stat().st_size > 10_000

    # Rollback: the replaced version serves again, exactly, on a probe set.
    out = cli("models", "rollback", str(CANDIDATES), "--name", name, env=worker_env)
    assert "rollback applied" in out, out
    before = restored(by_id[replaced], spec)
    probe = [{"event_id": f"p{i}", "time": START_MS + (EVENTS + 10 + i) * 1000,
              "a": (i % 21 - 10) / 10, "b": (i % 13 - 6) / 6} for i in range(200)]
    send(kafka, name, [(name, p) for p in probe])
    answered = wait_for_predictions(kafka, spec.predictions_topic,
                                    {p["event_id"] for p in probe}, 60,
                                    alive=lambda: worker.poll() is None)
    champion = before.models[before.champion]
    for p in probe:
        got = answered[p["event_id"]]
        proba = champion.predict({"a": p["a"], "b": p["b"]})[1]
        assert (got["model"], got["model_version"], got["proba"]) == (
            before.champion, champion.version, as_served(proba))

    # export writes that version's estimator; it predicts the same.
    exported = tmp_path / "model.pkl"
    cli("models", "export", str(CANDIDATES), str(replaced), "--name", name, "--to",
        str(exported), env=worker_env)
    estimator = pickle.loads(exported.read_bytes())  # our own file, just written
    x = {"a": 0.3, "b": -0.2}
    assert estimator.predict_proba_one(x) == champion.estimator.predict_proba_one(x)

    # ... and to an MLflow run: the same estimator, its lineage and the scores at save time.
    tracking = {"MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(),
                "MLFLOW_ALLOW_FILE_STORE": "true"}  # MLflow's own store, no server here
    out = cli("models", "export", str(CANDIDATES), str(replaced), "--name", name,
              "--to-mlflow", "--experiment", "streamlearn-test", env={**worker_env, **tracking})
    run_id = re.search(r"MLflow run (\w+)", out)[1]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.MlflowClient(tracking_uri=tracking["MLFLOW_TRACKING_URI"])
    run = client.get_run(run_id)
    assert run.data.tags["streamlearn.version"] == str(replaced)
    assert run.data.params["instance"] == before.ids[before.champion]
    assert run.data.params["examples"] == str(champion.version)
    assert run.data.metrics[f"{before.champion}.examples"] == champion.version
    logged = Path(client.download_artifacts(run_id, "model.pkl", str(tmp_path)))
    assert pickle.loads(logged.read_bytes()).predict_proba_one(x) == \
        champion.estimator.predict_proba_one(x)

    # A tampered command and a replayed one are refused; nothing changes.
    count = len(versions(kafka, spec))
    commands = [r.value for r in read_to_end(kafka, spec.commands_topic)]
    tampered = encode_command(99, "promote", replaced, key=b"not-the-model-key")
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for value in (tampered, commands[-1]):
        producer.send(spec.commands_topic, key=b"command", value=value)
    producer.flush()
    producer.close()
    wait_until(lambda: _refused(port, name) == {"bad_signature": 1.0, "replayed": 1.0}, 30,
               "both commands refused")
    assert len(versions(kafka, spec)) == count
    assert "command refused (bad_signature)" in worker_log(tmp_path)

    # A restarted learner reads the commands' history whole: what was applied is not a
    # replay (no alert); a forged record still counts. A new command is applied after it.
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    port = free_port()
    start_worker(CANDIDATES, name, SETTINGS, metrics_port=port)
    out = cli("models", "promote", str(CANDIDATES), str(replaced), "--name", name,
              env=worker_env)
    assert "applied" in out, out
    assert _refused(port, name) == {"bad_signature": 1.0, "replayed": 0.0}


def _actions(records: list[dict]) -> list[dict]:
    """The drift policy's actions on ``<name>.drift``, as ``Action.as_dict`` has them."""
    return [{"kind": r["action"], "at_example": r["at_example"], "from": r["from"],
             "to": r["to"], "reason": r["reason"]}
            for r in records if r["action"] != "alert"]


def _refused(port: int, name: str) -> dict[str, float]:
    text = scrape(port)
    return {reason: sample(text, f'streamlearn_commands_refused_total{{pipeline="{name}",'
                                 f'reason="{reason}"}}')
            for reason in ("bad_signature", "replayed")}


def test_a_stationary_stream_promotes_nothing(kafka, name, topics, start_worker):
    spec, _, _ = run_stream(kafka, name, topics, start_worker, seed=5, flip_at=None)
    actions = [r["action"] for r in drift_records(kafka, spec)]
    assert not {"promote", "switch", "reset"} & set(actions), actions
    assert {p["model"] for p in predictions(kafka, spec.predictions_topic)} == {"lr"}
    assert not [v for v in versions(kafka, spec).values() if v.manifest.get("promoted")]
    assert replay(spec, training(kafka, spec))[0] == _actions(drift_records(kafka, spec))


EXACTLY_ONCE = {**SETTINGS, "STREAMLEARN_PROCESSING_GUARANTEE": "exactly_once",
                "STREAMLEARN_TRANSACTIONAL_ID": "candidates-worker"}


def test_kill_9_in_the_windows_of_a_policy_action_and_a_command_under_exactly_once(
        kafka, name, topics, start_worker):
    """Under exactly-once, the learner's worker is killed (SIGKILL, by a failpoint) right
    after the transaction holding the policy's promotion commits and before its version is
    written; the next worker is killed the same way after a rollback command's commit; a
    third finishes the stream. A read_committed reader sees every prediction once, each
    action once on ``<name>.drift`` and each version once, and the final candidate set
    equals the learner's code run once over the training topic with the rollback at the
    example it took effect at (state is a function of the log, commands included)."""
    spec = load_pipeline(CANDIDATES).renamed(name)
    topics(name, CANDIDATES)
    events, labels = stream(seed=3, flip_at=FLIP_AT)
    records = in_time_order(name, events, labels)
    cut = next(i for i, (_, r) in enumerate(records) if r.get("event_id") == f"e{CUT}")
    ports = [free_port() for _ in range(3)]

    first = start_worker(CANDIDATES, name, {
        **EXACTLY_ONCE, "STREAMLEARN_FAILPOINTS": "learner-action-committed"}, ports[0])
    send(kafka, name, records[:cut])
    wait_until(lambda: first.poll() is not None, 90, "the promotion's failpoint")
    assert first.returncode == -signal.SIGKILL

    second = start_worker(CANDIDATES, name, {
        **EXACTLY_ONCE, "STREAMLEARN_FAILPOINTS": "learner-command-committed"}, ports[1])
    wait_until(lambda: _promoted(kafka, spec), 90, "the promotion's version, written by the "
               "learner that took over")
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    producer.send(spec.commands_topic, key=b"command",
                  value=encode_command(1, "rollback", None, key=MODEL_KEY.encode()))
    producer.flush()
    producer.close()
    wait_until(lambda: second.poll() is not None, 90, "the rollback's failpoint")
    assert second.returncode == -signal.SIGKILL

    third = start_worker(CANDIDATES, name, EXACTLY_ONCE, ports[2])
    send(kafka, name, records[cut:])
    wait_for_predictions(kafka, spec.predictions_topic, {e["event_id"] for e in events}, 120,
                         alive=lambda: third.poll() is None)
    wait_until(lambda: learned(ports[2], name) == EVENTS, 90, "every example learned")
    third.send_signal(signal.SIGTERM)  # a clean stop publishes what it learned
    assert third.wait(timeout=60) == 0

    served = Counter(p["event_id"] for p in predictions(kafka, spec.predictions_topic))
    assert set(served.values()) == {1} and len(served) == EVENTS
    drift = drift_records(kafka, spec)
    assert len({(r["model"], r["action"], r["at_example"], r.get("detector")) for r in drift}
               ) == len(drift), "a drift event written twice"
    rollback = [r for r in drift if r["action"] == "rollback"]
    assert len(rollback) == 1
    by_id = versions(kafka, spec)
    [made] = [v for v in by_id.values() if (v.manifest.get("action") or {}).get("seq") == 1]
    target = made.manifest["action"]["version"]

    examples = training(kafka, spec)
    assert len(examples) == EVENTS
    expected, offline = replay(spec, examples, (rollback[0]["at_example"], target,
                                                restored(by_id[target], spec)))
    assert _actions(drift) == expected
    assert {"challenge", "promote", "rollback"} <= {a["kind"] for a in expected}, expected
    # One version per action (the store keeps the newest few), those of the two kills too.
    made_by = Counter((v.manifest.get("action") or {}).get("at_example")
                      for v in by_id.values() if v.manifest.get("action"))
    assert set(made_by.values()) == {1}, made_by
    assert {expected[0]["at_example"], rollback[0]["at_example"]} <= made_by.keys(), made_by
    final = restored(by_id[max(by_id)], spec)
    assert (final.champion, final.ids, final.examples) == (
        offline.champion, offline.ids, offline.examples)
    probe = [{"a": (i % 21 - 10) / 10, "b": (i % 13 - 6) / 6} for i in range(200)]
    for candidate, model in final.models.items():
        assert model.version == offline.models[candidate].version
        assert [model.predict(x) for x in probe] == [
            offline.models[candidate].predict(x) for x in probe], candidate
        # Its metrics too (they live in the snapshot): each, prequential and rolling, ==.
        assert model.scorer.names == spec.scoring.names
        assert model.scorer.summary() == offline.models[candidate].scorer.summary(), candidate


def _promoted(kafka: str, spec) -> bool:
    return any((v.manifest.get("action") or {}).get("kind") == "promote"
               for v in versions(kafka, spec).values())
