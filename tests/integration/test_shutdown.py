"""SIGTERM stops the worker cleanly: snapshot and offsets committed, a restart repeats nothing
and its model carries on where it stopped (``model_version`` continues)."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.structs import TopicPartition

from streamlearn.tools.produce import ReplayOptions, replay
from streamlearn.tools.sources import iter_events

from .conftest import EXAMPLE, worker_log
from .topics import predictions, wait_for_predictions


def committed(kafka: str, group: str, topic: str) -> int | None:
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        offsets = admin.list_group_offsets(group)
    finally:
        admin.close()
    meta = offsets.get(group, {}).get(TopicPartition(topic, 0))
    return None if meta is None else meta.offset


def test_sigterm_then_restart_continues_the_model_and_repeats_nothing(
    kafka, name, topics, start_worker, tmp_path: Path
):
    topics(name)
    topic = f"{name}.predictions"
    n = replay(iter_events("river:Phishing", label_field="is_phishing"), kafka,
               ReplayOptions(topic=name, limit=200, id_prefix="a"))
    worker = start_worker(EXAMPLE, name)
    wait_for_predictions(kafka, topic, {f"a-{i}" for i in range(n)}, 90,
                         alive=lambda: worker.poll() is None)

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, worker_log(tmp_path)
    assert committed(kafka, f"streamlearn-{name}", name) == n
    assert "restored snapshot" not in worker_log(tmp_path)

    more = replay(iter_events("river:Phishing", label_field="is_phishing"), kafka,
                  ReplayOptions(topic=name, limit=10, id_prefix="b"))
    worker = start_worker(EXAMPLE, name)
    again = wait_for_predictions(kafka, topic, {f"b-{i}" for i in range(more)}, 90)
    assert f"partition 0: restored snapshot 1 ({n} examples)" in worker_log(tmp_path, 1)
    assert [again[f"b-{i}"]["model_version"] for i in range(more)] == list(range(n, n + more))
    per_event = Counter(p["event_id"] for p in predictions(kafka, topic))
    assert len(per_event) == n + more and max(per_event.values()) == 1, "nothing predicted twice"

    # A changed spec (another hyperparameter) refuses the old snapshots, naming both remedies;
    # --rebuild relearns every retained event.
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, worker_log(tmp_path, 1)
    changed = tmp_path / "changed.py"
    changed.write_text(EXAMPLE.read_text().replace("LogisticRegression()",
                                                    "LogisticRegression(l2=0.001)"))
    refused = start_worker(changed, name)
    assert refused.wait(timeout=60) != 0
    log = worker_log(tmp_path, 2)
    assert "refused (spec_changed)" in log and "--rebuild" in log and "streamlearn reset" in log
    start_worker(changed, name, args=("--rebuild",))
    last = replay(iter_events("river:Phishing", label_field="is_phishing"), kafka,
                  ReplayOptions(topic=name, limit=5, id_prefix="c"))
    rebuilt = wait_for_predictions(kafka, topic, {f"c-{i}" for i in range(last)}, 90)
    total = n + more
    assert [rebuilt[f"c-{i}"]["model_version"] for i in range(last)] == list(
        range(total, total + last)
    ), "the rebuilt model learned every retained event"
