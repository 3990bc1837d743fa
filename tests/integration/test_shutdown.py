"""SIGTERM stops the worker cleanly: offsets committed, so a restart repeats nothing."""

from __future__ import annotations

import signal
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.structs import TopicPartition

from streamlearn.predictions import collect_predictions
from streamlearn.replay import ReplayOptions, replay
from streamlearn.sources import iter_events
from streamlearn.tail import tail

from .conftest import EXAMPLE, worker_log


def committed(kafka: str, group: str, topic: str) -> int | None:
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        offsets = admin.list_group_offsets(group)
    finally:
        admin.close()
    meta = offsets.get(group, {}).get(TopicPartition(topic, 0))
    return None if meta is None else meta.offset


def test_sigterm_commits_offsets_and_restart_does_not_repeat(kafka, name, topics, start_worker,
                                                             tmp_path: Path):
    topics(name)
    events = iter_events("river:Phishing", label_field="is_phishing")
    n = replay(events, kafka, ReplayOptions(topic=name, limit=200, id_prefix="a"))
    worker = start_worker(EXAMPLE, name)
    found = collect_predictions(kafka, f"{name}.predictions", {f"a-{i}" for i in range(n)}, 90)
    assert len(found) == n, worker_log(tmp_path)

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, worker_log(tmp_path)
    assert committed(kafka, f"streamlearn-{name}", name) == n

    # A restart resumes after the committed offset: new events only, no repeats.
    more = replay(iter_events("river:Phishing", label_field="is_phishing"), kafka,
                  ReplayOptions(topic=name, limit=10, id_prefix="b"))
    start_worker(EXAMPLE, name)
    again = collect_predictions(kafka, f"{name}.predictions", {f"b-{i}" for i in range(more)}, 90)
    assert len(again) == more, worker_log(tmp_path, 1)
    ids = [
        r.value for r in tail(kafka, f"{name}.predictions", from_beginning=True, idle_timeout=3)
    ]
    assert len(ids) == n + more, "no event was predicted twice"
