"""Per-partition models move with their partitions: a survivor takes over a paused worker's.

Two workers share a two-partition pipeline, exactly-once; one is paused (SIGSTOP) mid-stream,
past its session timeout and its transaction timeout. The survivor is assigned the orphaned
partition once the group drops the silent member, restores that partition's model from its
snapshot and replays to the committed offset without writing. Then the paused worker
resumes (SIGCONT) as a zombie: nothing it wrote before or after becomes visible (its
transaction was aborted, its offsets are refused: KIP-447). A ``read_committed`` reader sees
each prediction once, and each partition's served accuracy equals River's progressive score
on that partition's own sequence of events.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import orjson
from river import evaluate, metrics

from streamlearn.spec.pipeline import load_pipeline
from streamlearn.tools.predictions import prequential_accuracy
from streamlearn.tools.produce import ReplayOptions, replay
from streamlearn.tools.sources import iter_events
from streamlearn.tools.tail import read_to_end

from .conftest import EXAMPLE, free_port, worker_log
from .topics import first_per_event, predictions, wait_for_predictions, wait_until

SETTINGS = {"STREAMLEARN_SNAPSHOT_EVERY": "50", "STREAMLEARN_BATCH_SIZE": "25",
            "STREAMLEARN_PROCESSING_GUARANTEE": "exactly_once",
            "STREAMLEARN_SESSION_TIMEOUT": "6"}
PAUSE_S = 14  # > the session timeout (6 s) and the transaction timeout (10 s)
ASSIGNED = re.compile(r"assigned partitions \[([\d, ]*)\]")


def owned(tmp_path: Path, index: int) -> set[int]:
    """Partitions worker ``index`` was assigned most recently (from its log)."""
    found = ASSIGNED.findall(worker_log(tmp_path, index))
    return {int(p) for p in found[-1].split(",") if p.strip()} if found else set()


def test_survivor_takes_over_the_partition_and_its_model(kafka, name, topics, start_worker,
                                                         tmp_path: Path):
    pipeline_file = tmp_path / "two_partitions.py"
    pipeline_file.write_text(
        EXAMPLE.read_text().replace(
            "    model=model,\n",
            "    model=model,\n    partitions=2,\n    learning='per_partition',\n",
        )
    )
    spec = load_pipeline(pipeline_file).renamed(name)
    assert spec.partitions == 2
    topics(name, pipeline_file)
    workers = [start_worker(pipeline_file, name, SETTINGS, metrics_port=free_port())
               for _ in range(2)]
    wait_until(lambda: owned(tmp_path, 0) and owned(tmp_path, 1)
               and len(owned(tmp_path, 0) | owned(tmp_path, 1)) == 2, 60,
               "both workers to own a partition")

    events = list(iter_events("river:Phishing", label_field="is_phishing"))
    producer = threading.Thread(target=replay, args=(events, kafka, ReplayOptions(
        topic=name, rate=150, id_prefix="ev")))
    producer.start()
    wait_until(lambda: len(first_per_event(predictions(kafka, spec.predictions_topic))) >= 400,
               90, "400 predictions")
    victim_partitions = owned(tmp_path, 1)
    workers[1].send_signal(signal.SIGSTOP)
    wait_until(lambda: owned(tmp_path, 0) == {0, 1}, 60, "the survivor to own both")
    time.sleep(max(0.0, PAUSE_S - 6))
    workers[1].send_signal(signal.SIGCONT)
    producer.join()

    ids = {f"ev-{i}" for i in range(len(events))}
    served = wait_for_predictions(kafka, spec.predictions_topic, ids, 120,
                                  alive=lambda: all(w.poll() is None for w in workers))
    every = [r["event_id"] for r in predictions(kafka, spec.predictions_topic)]
    assert sorted(every) == sorted(ids), "a read_committed reader sees each prediction once"
    survivor_log = worker_log(tmp_path, 0)
    for partition in victim_partitions:
        assert re.search(rf"partition {partition}: restored snapshot \d+", survivor_log), (
            "the survivor restored the orphaned partition's model from its snapshot"
        )

    labels = {f"ev-{i}": e["is_phishing"] for i, e in enumerate(events)}
    features = list(spec.features or ())
    by_partition: dict[int, list[dict]] = {0: [], 1: []}
    for record in read_to_end(kafka, spec.events_topic):
        by_partition[record.partition].append(orjson.loads(record.value))
    for partition, sequence in by_partition.items():
        assert sequence, f"partition {partition} received events"
        reference = evaluate.progressive_val_score(
            [({k: e[k] for k in features}, e["is_phishing"]) for e in sequence],
            spec.model(), metrics.Accuracy(),
        ).get()
        mine = {e["event_id"]: labels[e["event_id"]] for e in sequence}
        assert {served[i]["_partition"] for i in mine} <= {0, 1}
        assert prequential_accuracy(mine, served) == reference, f"partition {partition}"
