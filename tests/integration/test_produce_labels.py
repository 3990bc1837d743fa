"""`streamlearn produce --labels-to` against the real broker, as a user types it: events go
out without their label, and every event gets exactly one label record, keyed by its id."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson

from streamlearn.kafka.admin import topic_partitions
from streamlearn.tools.sources import iter_events
from streamlearn.tools.tail import read_to_end


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamlearn", *args], env=env,
                          capture_output=True, text=True, timeout=180)


def records(kafka: str, topic: str) -> list[tuple[int, bytes | None, dict[str, Any]]]:
    return [(r.partition, r.key, orjson.loads(r.value or b"{}"))
            for r in read_to_end(kafka, topic)]


def test_every_event_gets_one_label_on_its_partition(kafka, name, worker_env):
    labels_topic = f"{name}.labels"
    done = cli(worker_env, "produce", "river:Phishing", "--topic", name, "--limit", "50",
               "--label-field", "is_phishing", "--partitions", "3",
               "--labels-to", labels_topic, "--label-delay", "0-1", "--seed", "1")
    assert done.returncode == 0, done.stderr
    assert f"sent 50 events to {name} and 50 labels to {labels_topic}" in done.stdout
    assert topic_partitions(kafka, labels_topic) == 3

    events = records(kafka, name)
    labels = records(kafka, labels_topic)
    assert len(events) == 50 and len(labels) == 50
    assert all("is_phishing" not in e for _, _, e in events), "the label left the events"
    where = {e["event_id"]: (partition, key) for partition, key, e in events}
    assert len(where) == 50
    assert sorted(label["event_id"] for _, _, label in labels) == sorted(where)
    expected = [e["is_phishing"] for e in iter_events("river:Phishing", "is_phishing", rows=50)]
    for partition, key, label in labels:
        assert set(label) == {"event_id", "label"}, "record timestamps are the clock: no time"
        assert key == label["event_id"].encode() == where[label["event_id"]][1]
        assert partition == where[label["event_id"]][0], "keys match, so partitions do"
        assert label["label"] == expected[int(label["event_id"].rsplit("-", 1)[1])]
    assert len({p for p, _, _ in events}) > 1, "50 keys spread over the 3 partitions"


def test_labels_of_events_with_their_own_id_and_time(kafka, name, worker_env):
    labels_topic = f"{name}.labels"
    done = cli(worker_env, "produce", "fraud:30:seed=3", "--topic", name,
               "--label-field", "is_fraud", "--key-field", "card", "--event-id-field", "tx_id",
               "--labels-to", labels_topic, "--label-delay", "0.5", "--time-field", "time")
    assert done.returncode == 0, done.stderr

    events = {e["tx_id"]: e for _, _, e in records(kafka, name)}
    labels = records(kafka, labels_topic)
    assert len(events) == 30 and all("is_fraud" not in e and "event_id" not in e
                                     for e in events.values())
    assert sorted(label["event_id"] for _, _, label in labels) == sorted(events)
    for _, key, label in labels:
        assert key == label["event_id"].encode()
        assert label["time"] == events[label["event_id"]]["time"] + 500


def test_labels_to_without_a_label_in_events_is_a_clear_error(kafka, name, worker_env, tmp_path):
    (tmp_path / "events.csv").write_text("user,amount\na,1.5\nb,2.0\n")
    done = cli(worker_env, "produce", str(tmp_path / "events.csv"), "--topic", name,
               "--labels-to", f"{name}.labels", "--label-field", "is_fraud")
    assert done.returncode == 1
    assert "no label field 'is_fraud'" in done.stderr and "amount" in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert topic_partitions(kafka, name) is None, "checked before anything is created"
