"""Scale-out under global learning: 1 and 2 worker processes on 4 partitions.

``python -m benchmarks.scale_out [--events 200000] [--reps 2] [--bootstrap HOST:PORT]``

Throughput: N fresh workers (``streamlearn run``, one process each) join their group and
settle (every member assigned, the learner active); then a burst of events (River's
Hyperplane, 10 numeric features) with their labels on ``<name>.labels`` is produced at once.
Events/s is counted while the burst goes from 10% to 90% served, and CPU from the workers'
``/proc`` times over the same span (events per CPU-second = per core). Joining is left out
because it is paid once per scale-out, not per event. A worker that exits fails the run.
Runs of 1 and 2 workers are interleaved, medians reported. Then a paced run (1 worker,
300 events/s with each label right after its event) gives the end-to-end delay from a
label being produced to the first prediction served by a model that learned it, and the
predictors' snapshot load time (``streamlearn_snapshot_load_seconds``). Results:
``benchmarks/results/scale_out.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, ConsumerGroupState, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from river.datasets import synth

from benchmarks.harness import broker
from benchmarks.options import RESULTS
from streamlearn.config import Settings
from streamlearn.kafka.admin import create_topics
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.spec.topics import topic_configs
from streamlearn.streams.merge import in_order

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "benchmarks" / "pipelines" / "global_logreg.py"
START_MS = 1_767_225_600_000
TICKS = os.sysconf("SC_CLK_TCK")
LEARNER_CLAIM_S = 3
LOGS = Path(tempfile.gettempdir()) / "streamlearn-bench-logs"
"""Each worker's log, ``<name>-<i>.log``: a benchmark run that fails names it."""


def stream(n: int) -> list[tuple[dict, dict]]:
    rows = synth.Hyperplane(seed=42, n_features=10).take(n)
    out = []
    for i, (x, y) in enumerate(rows):
        t = START_MS + i * 10
        event = {"event_id": f"e{i}", "time": t, **{f"x{k}": v for k, v in x.items()}}
        out.append((event, {"event_id": f"e{i}", "label": bool(y), "time": t}))
    return out


def produce(bootstrap: str, name: str, rows: list[tuple[dict, dict]], rate: float = 0) -> dict:
    """Events and labels; returns each label's send time (ms) when paced."""
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                         "linger.ms": 5})
    sent, started = {}, time.monotonic()
    for i, (event, label) in enumerate(rows):
        key = event["event_id"].encode()
        _send(producer, name, orjson.dumps(event), key)
        _send(producer, f"{name}.labels", orjson.dumps(label), key)
        if rate:
            sent[label["event_id"]] = time.time() * 1000
            delay = started + (i + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        producer.poll(0)
    producer.flush(60)
    return sent


def _send(producer: Producer, topic: str, value: bytes, key: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:  # librdkafka's queue is full: let it drain
            producer.poll(0.1)


def ends(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-probe"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(partitions))
    finally:
        consumer.close()


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def machine_busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy (every process: broker, producer...)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICKS


def broker_pids() -> list[int]:
    """Every Kafka broker JVM on this machine (the one under test does the work)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"kafka.Kafka" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def start_workers(bootstrap: str, name: str, count: int, env: dict[str, str],
                  pipeline: Path = PIPELINE) -> list[Any]:
    procs = []
    LOGS.mkdir(exist_ok=True)
    for i in range(count):
        with (LOGS / f"{name}-{i}.log").open("wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "streamlearn", "run", str(pipeline), "--name", name],
                env={**os.environ, **env, "STREAMLEARN_BOOTSTRAP": bootstrap,
                     "STREAMLEARN_METRICS_PORT": str(9500 + i)},
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
    return procs


def stop(procs: list[Any]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def fresh(bootstrap: str, pipeline: Path = PIPELINE) -> tuple[str, Any]:
    spec = load_pipeline(pipeline)
    name = f"{spec.name}-{uuid.uuid4().hex[:8]}"
    spec = spec.renamed(name)
    create_topics(bootstrap, spec.topics, topic_configs(spec, Settings()))
    return name, spec


def settled(bootstrap: str, group: str, workers: int, procs: list[Any]) -> None:
    """Wait until the group is stable with every worker holding partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        alive(procs)
        found = admin.describe_consumer_groups([group])[group].result()
        if (found.state == ConsumerGroupState.STABLE and len(found.members) == workers
                and all(m.assignment.topic_partitions for m in found.members)):
            return
        time.sleep(0.5)
    raise SystemExit(f"the group {group} did not settle with {workers} workers in 120 s")


def alive(procs: list[Any]) -> None:
    for proc in procs:
        if proc.poll() is not None:
            raise SystemExit(f"a worker exited ({proc.returncode}) during the benchmark; its "
                             f"log: {LOGS}/{proc.args[-1]}-*.log")


def wait_served(bootstrap: str, topic: str, at_least: int, procs: list[Any],
                partitions: int = 4) -> int:
    deadline = time.monotonic() + 600
    while (n := ends(bootstrap, topic, partitions)) < at_least:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {n:,} of {at_least:,} events served in 600 s")
        alive(procs)
        time.sleep(0.02)
    return n


def throughput(bootstrap: str, rows: list, workers: int, env: dict[str, str]) -> dict:
    name, spec = fresh(bootstrap)
    procs = start_workers(bootstrap, name, workers, env)
    pids = [p.pid for p in procs]
    low, high = len(rows) // 10, len(rows) * 9 // 10
    try:
        settled(bootstrap, spec.group_id, workers, procs)
        time.sleep(LEARNER_CLAIM_S)  # the learner's claim is taken
        produce(bootstrap, name, rows)
        n0 = wait_served(bootstrap, spec.predictions_topic, low, procs)
        brokers = broker_pids()
        t0, c0, m0 = time.monotonic(), cpu_seconds(pids), machine_busy_seconds()
        b0 = cpu_seconds(brokers)
        n1 = wait_served(bootstrap, spec.predictions_topic, high, procs)
        t1, c1, m1 = time.monotonic(), cpu_seconds(pids), machine_busy_seconds()
        b1 = cpu_seconds(brokers)
        alive(procs)
    finally:
        stop(procs)
    served = n1 - n0
    return {"workers": workers, "events_per_s": served / (t1 - t0),
            "events_per_cpu_s": served / (c1 - c0), "cpu_cores_used": (c1 - c0) / (t1 - t0),
            "machine_cores_busy": (m1 - m0) / (t1 - t0), "broker_cores": (b1 - b0) / (t1 - t0)}


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def paced(bootstrap: str, rows: list, rate: float, env: dict[str, str]) -> dict:
    """Label produced -> first prediction by a model that learned it; snapshot load time."""
    name, spec = fresh(bootstrap)
    procs = start_workers(bootstrap, name, 1, env)
    try:
        time.sleep(6)  # the worker up and assigned
        sent = produce(bootstrap, name, rows, rate)
        while ends(bootstrap, spec.predictions_topic, 4) < len(rows):
            time.sleep(0.2)
        time.sleep(2 * float(env["STREAMLEARN_PUBLISH_INTERVAL"]))
        text = scrape(9500)
    finally:
        stop(procs)
    order = _training_order(bootstrap, spec.training_topic)
    served = _predictions(bootstrap, spec.predictions_topic)
    served.sort(key=lambda p: p["predicted_at"])
    delays, k, first_at = [], 0, {}
    for p in served:  # first time a model with >= v examples served anything
        while k < p["model_version"]:
            k += 1
            first_at[k] = p["predicted_at"]
    for i, event_id in enumerate(order):
        if i + 1 in first_at:
            delays.append(first_at[i + 1] - sent[event_id])
    loads = {kind: float(v) for kind, v in re.findall(
        r'^streamlearn_snapshot_load_seconds_(sum|count)\{[^}]*\} (\S+)$', text, re.M)}
    return {"rate": rate, "label_to_served_ms_p50": statistics.median(delays),
            "label_to_served_ms_p99": statistics.quantiles(delays, n=100)[98],
            "examples_measured": len(delays),
            "snapshot_load_ms_mean": (1000 * loads["sum"] / loads["count"]
                                      if loads.get("count") else None),
            "snapshots_loaded": loads.get("count", 0)}


def _records(bootstrap: str, topic: str, partitions: int) -> list[dict]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-reader",
                         "enable.auto.commit": False})
    out = []
    try:
        todo = {}
        for p in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                todo[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in todo])
        while todo:
            for m in consumer.consume(1000, timeout=1):
                if m.error():
                    continue
                out.append(orjson.loads(m.value()))
                if m.offset() + 1 >= todo.get(m.partition(), 0):
                    todo.pop(m.partition(), None)
    finally:
        consumer.close()
    return out


def _training_order(bootstrap: str, topic: str) -> list[str]:
    seen, order = set(), []
    examples = _records(bootstrap, topic, 1)
    for example in in_order(examples, lambda r: r["event_id"]):  # the learner's order
        if example["event_id"] not in seen:
            seen.add(example["event_id"])
            order.append(example["event_id"])
    return order


def _predictions(bootstrap: str, topic: str) -> list[dict]:
    return _records(bootstrap, topic, 4)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--bootstrap")
    args = parser.parse_args(argv)
    bootstrap, _ = broker(args.bootstrap or os.environ.get("STREAMLEARN_BOOTSTRAP"))
    env = {"STREAMLEARN_MODEL_KEY": "bench", "STREAMLEARN_PUBLISH_INTERVAL": "1",
           "STREAMLEARN_DRIFT": "on"}
    rows = stream(args.events)
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for rep in range(args.reps):
        for workers in (1, 2):
            result = throughput(bootstrap, rows, workers, env)
            runs[workers].append(result)
            print(f"rep {rep + 1}: {workers} worker(s): {result['events_per_s']:,.0f} ev/s, "
                  f"{result['events_per_cpu_s']:,.0f} ev/CPU-s, "
                  f"{result['cpu_cores_used']:.2f} cores (broker {result['broker_cores']:.2f}, "
                  f"machine {result['machine_cores_busy']:.2f})", flush=True)
    summary = {w: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
               for w, rs in runs.items()}
    delay = paced(bootstrap, rows[:9000], 300.0, env)
    print(f"label -> served p50 {delay['label_to_served_ms_p50']:.0f} ms, p99 "
          f"{delay['label_to_served_ms_p99']:.0f} ms; snapshot load "
          f"{delay['snapshot_load_ms_mean']} ms", flush=True)
    result = {"events": args.events, "reps": args.reps, "throughput": summary, "runs": runs,
              "paced": delay, "cpus": os.cpu_count()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale_out.json").write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2
                                                         | orjson.OPT_NON_STR_KEYS).decode())
    one, two = summary[1], summary[2]
    (RESULTS / "scale_out.md").write_text(
        "# Scale-out under global learning (4 partitions)\n\n"
        f"{args.events:,} events with labels on `<name>.labels`, medians of {args.reps} "
        f"interleaved runs, {os.cpu_count()} CPUs.\n\n"
        "| workers | events/s (all) | events/s per worker | events per worker CPU-second "
        "| cores used by workers | by the broker | busy (machine) |\n"
        "|---|---|---|---|---|---|---|\n"
        + "".join(f"| {w} | {s['events_per_s']:,.0f} | {s['events_per_s'] / w:,.0f} | "
                  f"{s['events_per_cpu_s']:,.0f} | {s['cpu_cores_used']:.2f} | "
                  f"{s['broker_cores']:.2f} | {s['machine_cores_busy']:.2f} |\n"
                  for w, s in ((1, one), (2, two)))
        + f"\n2 workers / 1 worker: {two['events_per_s'] / one['events_per_s']:.2f}x.\n\n"
        f"Paced at {delay['rate']:.0f} events/s (1 worker, label right after its event, "
        f"publish interval 1 s): label produced -> first prediction by a model that learned "
        f"it: p50 {delay['label_to_served_ms_p50']:.0f} ms, p99 "
        f"{delay['label_to_served_ms_p99']:.0f} ms ({delay['examples_measured']:,} examples). "
        f"Snapshot verify+unpickle at the predictor: {delay['snapshot_load_ms_mean']:.2f} ms "
        f"mean over {delay['snapshots_loaded']:.0f} loads.\n")
    print((RESULTS / "scale_out.md").read_text())


if __name__ == "__main__":
    main()
