"""`streamlearn produce` and `tail` against the real broker, as a user types them."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pandas as pd

from streamlearn.broker.admin import topic_partitions


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


def test_bad_source_and_bad_setting_are_one_line_errors(worker_env, tmp_path):
    missing = cli(worker_env, "produce", str(tmp_path / "nope.csv"), "--topic", "x")
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "not found" in missing.stderr
    env = {**worker_env, "STREAMLEARN_BATCH_SIZE": "lots"}
    bad = cli(env, "run", "examples/phishing.py")
    assert bad.returncode == 1
    assert "STREAMLEARN_BATCH_SIZE" in bad.stderr and bad.stderr.strip().count("\n") == 0
