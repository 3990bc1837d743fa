"""`streamlearn produce`, `tail`, `dlq` and `reset` against the real broker, as a user types them.

None of these needs a worker (dead letters are produced here as the worker writes them),
except `demo`, which runs one.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import orjson
import pandas as pd
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from streamlearn.kafka.admin import create_topics, topic_partitions
from streamlearn.tools.tail import read_to_end

from .conftest import ROOT


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamlearn", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_produce_river_dataset_then_tail_it(kafka, name, worker_env):
    done = cli(worker_env, "produce", "river:Phishing", "--topic", name, "--limit", "25",
               "--label-field", "is_phishing", "--partitions", "2")
    assert done.returncode == 0, done.stderr
    assert f"sent 25 events to {name}" in done.stdout
    assert topic_partitions(kafka, name) == 2, "the project creates topics, not the broker"
    shown = cli(worker_env, "tail", name, "--from-beginning", "--limit", "25", "--idle", "15")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.strip().splitlines()
    assert len(lines) == 25
    event = orjson.loads(lines[0].split("] ", 1)[1])
    assert "is_phishing" in event and "event_id" in event


def test_produce_csv_and_parquet(kafka, name, worker_env, tmp_path):
    frame = pd.DataFrame({"user": ["a", "b", "c"], "amount": [1.5, 2.0, 3.25], "y": [0, 1, 0]})
    frame.to_csv(tmp_path / "events.csv", index=False)
    frame.to_parquet(tmp_path / "events.parquet")
    for source in ("events.csv", "events.parquet"):
        done = cli(worker_env, "produce", str(tmp_path / source), "--topic", name,
                   "--key-field", "user")
        assert done.returncode == 0, done.stderr
    shown = cli(worker_env, "tail", name, "--from-beginning", "--limit", "6", "--idle", "15")
    values = [orjson.loads(line.split("] ", 1)[1]) for line in shown.stdout.splitlines()]
    assert [v["amount"] for v in values] == [1.5, 2.0, 3.25] * 2
    assert all(v["event_id"] for v in values)


def test_a_bad_line_midway_says_how_many_events_were_sent_before_it(
        kafka, name, worker_env, tmp_path):
    source = tmp_path / "events.jsonl"
    source.write_text('{"a": 1}\n{"a": 2}\n{"a": 3,\n{"a": 4}\n')
    done = cli(worker_env, "produce", str(source), "--topic", name)
    assert done.returncode == 1
    assert "line 3: invalid JSON" in done.stderr
    assert f"the 2 events before it were sent to {name}" in done.stderr
    assert [orjson.loads(r.value)["a"] for r in consume_all(kafka, name)] == [1, 2]


def test_bad_source_and_bad_setting_are_one_line_errors(worker_env, tmp_path):
    missing = cli(worker_env, "produce", str(tmp_path / "nope.csv"), "--topic", "x")
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "not found" in missing.stderr
    env = {**worker_env, "STREAMLEARN_BATCH_SIZE": "lots"}
    bad = cli(env, "run", "examples/phishing.py")
    assert bad.returncode == 1
    assert "STREAMLEARN_BATCH_SIZE" in bad.stderr and bad.stderr.strip().count("\n") == 0


# -- tail: what it says while it waits, and dead letters' headers ---------------------------


def produce_records(kafka: str, topic: str, records: list[tuple[bytes | None, bytes, list]]):
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    try:
        for key, value, headers in records:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush()
    finally:
        producer.close()


def consume_all(kafka: str, topic: str) -> list:
    return list(read_to_end(kafka, topic))


def test_tail_says_it_waits_and_how_many_records_are_there(kafka, name, worker_env):
    done = cli(worker_env, "produce", "river:Phishing", "--topic", name, "--limit", "5")
    assert done.returncode == 0, done.stderr
    follow = subprocess.Popen(
        [sys.executable, "-m", "streamlearn", "tail", name, "--limit", "1", "--idle", "30"],
        env=worker_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert follow.stderr is not None
        waiting = follow.stderr.readline()  # printed once, before any new record
        assert waiting.strip() == (f"waiting for new records on {name} "
                                   "(5 already there: add --from-beginning to see them)")
        produce_records(kafka, name, [(b"k", b'{"new": true}', [])])
        out, _ = follow.communicate(timeout=60)
    finally:
        follow.kill()
    assert follow.returncode == 0
    assert out.strip() == '[0@5] {"new": true}', "the 5 older records are not shown"


def test_tail_of_an_empty_or_missing_topic(kafka, name, worker_env, topics):
    missing = cli(worker_env, "tail", name, "--idle", "1")
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"Error: no topic {name!r} at {kafka}"
    topics(name)
    empty = cli(worker_env, "tail", name, "--from-beginning", "--idle", "1")
    assert empty.returncode == 0 and empty.stdout == ""
    assert f"waiting for new records on {name} (none there yet)" in empty.stderr


def dead_letter(offset: int, value: bytes, reason: str, key: bytes = b"c1") -> tuple:
    return (key, value, [
        ("trace", b"t-1"),
        ("streamlearn.source.topic", b"events"),
        ("streamlearn.source.partition", b"0"),
        ("streamlearn.source.offset", str(offset).encode()),
        ("streamlearn.error.reason", reason.encode()),
        ("streamlearn.error", f"{reason} at {offset}".encode()),
    ])


def test_tail_sets_dead_letter_headers_apart(kafka, name, worker_env, topics):
    topics(name)
    produce_records(kafka, f"{name}.dlq", [dead_letter(3, b"{oops", "invalid_json")])
    shown = cli(worker_env, "tail", f"{name}.dlq", "--from-beginning", "--limit", "1")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "[0@0] {oops",
        "    trace: t-1",
        "    streamlearn.source.topic: events",
        "    streamlearn.source.partition: 0",
        "    streamlearn.source.offset: 3",
        "    streamlearn.error.reason: invalid_json",
        "    streamlearn.error: invalid_json at 3",
    ]


# -- dlq show / export / replay ----------------------------------------------------------

EXAMPLE = "examples/phishing.py"  # key_field and event_id_field: event_id
GOOD = {"event_id": "e1", "empty_server_form_handler": 0.5, "popup_window": 0.0,
        "https": 1.0, "request_from_other_domain": 0.0, "anchor_from_other_domain": 0.5,
        "is_popular": 1.0, "long_url": 0.0, "age_of_domain": 1.0, "ip_in_url": 0.0,
        "is_phishing": True}


@pytest.fixture
def dead_letters(kafka, name, topics):
    """Three dead letters of the example pipeline, renamed ``name``."""
    topics(name)
    bad_type = orjson.dumps({**GOOD, "event_id": "e2", "https": "yes"})
    produce_records(kafka, f"{name}.dlq", [
        dead_letter(10, b'{"event_id": "e0", [/oops]', "invalid_json", key=b"e0"),
        dead_letter(11, bad_type, "bad_type", key=b"e2"),
        dead_letter(12, orjson.dumps({**GOOD, "event_id": "e3"}), "model_error", key=b"e3"),
    ])
    return bad_type


def test_dlq_show_is_a_table_with_a_summary(name, worker_env, dead_letters):
    env = {**worker_env, "COLUMNS": "200"}
    shown = cli(env, "dlq", "show", EXAMPLE, "--name", name)
    assert shown.returncode == 0, shown.stderr
    rows = [line.split("│")[1:5] for line in shown.stdout.splitlines() if "│" in line]
    assert [[cell.strip() for cell in row] for row in rows] == [
        # Brackets are shown as they are, not read as rich markup.
        ["0", "invalid_json", "invalid_json at 10", '{"event_id": "e0", [/oops]'],
        ["1", "bad_type", "bad_type at 11", dead_letters.decode()[:59] + "…"],
        ["2", "model_error", "model_error at 12", rows[2][3].strip()],
    ], shown.stdout
    assert shown.stdout.splitlines()[-1] == (
        f"3 dead letters on {name}.dlq (invalid_json 1, bad_type 1, model_error 1); 3 shown")
    only = cli(env, "dlq", "show", EXAMPLE, "--name", name, "--reason", "bad_type")
    assert "bad_type" in only.stdout and "invalid_json at 10" not in only.stdout
    assert only.stdout.splitlines()[-1].endswith("1 shown with reason bad_type")
    limited = cli(env, "dlq", "show", EXAMPLE, "--name", name, "--limit", "1")
    assert "bad_type at 11" not in limited.stdout and "; 1 shown" in limited.stdout


def test_dlq_of_a_pipeline_without_topics_is_a_one_line_error(kafka, name, worker_env,
                                                              tmp_path):
    shown = cli(worker_env, "dlq", "show", EXAMPLE, "--name", name)
    assert shown.returncode == 1 and shown.stderr.strip().count("\n") == 0
    assert f"no dead-letter topic '{name}.dlq' at {kafka}" in shown.stderr
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_bytes(orjson.dumps(GOOD) + b"\n")
    sent = cli(worker_env, "dlq", "replay", EXAMPLE, "--name", name, "--fixed", str(fixed),
               "--yes", timeout=30)
    assert sent.returncode == 1 and sent.stderr.strip().count("\n") == 0
    assert f"no events topic '{name}' at {kafka}" in sent.stderr


def test_dlq_replay_all_resends_original_bytes_and_headers(kafka, name, worker_env,
                                                           dead_letters):
    refused = cli(worker_env, "dlq", "replay", EXAMPLE, "--name", name, "--all")
    assert refused.returncode == 1 and refused.stderr.strip().count("\n") == 0
    assert "add --yes" in refused.stderr
    assert consume_all(kafka, name) == [], "nothing is sent without confirmation"

    done = cli(worker_env, "dlq", "replay", EXAMPLE, "--name", name, "--all",
               "--reason", "bad_type", "--yes")
    assert done.returncode == 0, done.stderr
    assert f"sent 1 events from {name}.dlq to {name}" in done.stdout
    (event,) = consume_all(kafka, name)
    assert (event.key, event.value) == (b"e2", dead_letters)
    assert event.headers == [("trace", b"t-1"),
                             ("streamlearn.replayed_from", f"{name}.dlq:1".encode())]


def test_dlq_export_then_replay_the_fixed_file(kafka, name, worker_env, dead_letters,
                                               tmp_path):
    out = tmp_path / "dead.jsonl"
    exported = cli(worker_env, "dlq", "export", EXAMPLE, "--name", name, "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert f"wrote 3 values from {name}.dlq to {out}" in exported.stdout
    assert "2 of them fail the pipeline's checks as they are" in exported.stdout
    lines = out.read_text().splitlines()
    assert lines[0] == '{"event_id": "e0", [/oops]'
    assert orjson.loads(lines[1])["https"] == "yes"

    not_yet = cli(worker_env, "dlq", "replay", EXAMPLE, "--name", name, "--fixed", str(out),
                  "--yes")
    assert not_yet.returncode == 1 and not_yet.stderr.strip().count("\n") == 0
    assert "line 1: invalid_json" in not_yet.stderr and "nothing was sent" in not_yet.stderr

    fixed = [{**GOOD, "event_id": "e0"}, {**orjson.loads(lines[1]), "https": 1.0},
             orjson.loads(lines[2])]
    out.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in fixed))
    done = cli(worker_env, "dlq", "replay", EXAMPLE, "--name", name, "--fixed", str(out),
               "--yes")
    assert done.returncode == 0, done.stderr
    sent = consume_all(kafka, name)
    assert [(r.key, orjson.loads(r.value)) for r in sent] == [
        (e["event_id"].encode(), e) for e in fixed
    ]


# -- reset -------------------------------------------------------------------------------


def groups(kafka: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        return {g["group_id"] for g in admin.list_groups()}
    finally:
        admin.close()


def join_group(kafka: str, topic: str, group: str) -> KafkaConsumer:
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka, group_id=group,
                             auto_offset_reset="earliest")
    deadline = time.monotonic() + 90  # a loaded machine: the first join can be slow
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(timeout_ms=200)
    assert consumer.assignment(), "the consumer joined its group"
    consumer.commit()
    return consumer


def test_reset_deletes_model_state_and_group_but_keeps_events(kafka, name, worker_env,
                                                             topics):
    topics(name)
    create_topics(kafka, {f"{name}.state": 1})
    group = f"streamlearn-{name}"
    member = join_group(kafka, name, group)
    try:
        refused = cli(worker_env, "reset", EXAMPLE, "--name", name)
        assert refused.returncode == 1 and refused.stderr.strip().count("\n") == 0
        assert "add --yes" in refused.stderr
        busy = cli(worker_env, "reset", EXAMPLE, "--name", name, "--yes")
        assert busy.returncode == 1 and busy.stderr.strip().count("\n") == 0
        assert "stop the pipeline's workers" in busy.stderr
        assert topic_partitions(kafka, f"{name}.models") == 1, "nothing deleted while busy"
    finally:
        member.close()
    assert group in groups(kafka)

    done = cli(worker_env, "reset", EXAMPLE, "--name", name, "--yes")
    assert done.returncode == 0, done.stderr
    assert f"relearns from the earliest event retained on {name}" in done.stdout
    assert topic_partitions(kafka, f"{name}.models") is None
    assert topic_partitions(kafka, f"{name}.state") is None
    assert group not in groups(kafka)
    for kept in (name, f"{name}.predictions", f"{name}.dlq"):
        assert topic_partitions(kafka, kept) == 1

    again = cli(worker_env, "reset", EXAMPLE, "--name", name, "--yes")
    assert again.returncode == 0 and "deleted nothing" in again.stdout


def test_demo_twice_matches_river_each_time(kafka, worker_env):
    """The first thing a user runs: each demo starts a fresh model, so both runs agree
    with River's progressive_val_score (a restored model from the last run would not)."""
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "streamlearn", "demo"], env=worker_env, cwd=ROOT,
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        ours = re.search(r"prequential accuracy\D*([\d.]+)", result.stdout)
        river = re.search(r"River progressive_val_score\D*([\d.]+)", result.stdout)
        assert ours and river and ours.group(1) == river.group(1), result.stdout
        # The pipeline's primary metric (a boolean label: ROC AUC), next to River's.
        auc = re.search(r"prequential roc_auc\D*([\d.]+) \(River progressive_val_score "
                        r"([\d.]+)\)", result.stdout)
        assert auc and auc.group(1) == auc.group(2), result.stdout
