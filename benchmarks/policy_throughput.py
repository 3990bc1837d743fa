"""What a drift policy costs in a running worker: events/s through Kafka, against one model.

``benchmarks.drift_policies`` measures the learner's own code offline: per example, the
champion and its shadows predict, then every candidate predicts again and learns. That is
the whole cost of a policy but not the whole cost of an event: a worker also decodes it,
writes the prediction and the served record, joins the label and publishes models. This
benchmark measures what a user sees, on the same streams and candidates
(``benchmarks/pipelines/policies.py``: ``single`` is the champion alone, as a pipeline with
``model=``; the policies run ``tree`` and ``lr`` under ``drift_policy=``).

For each stream (seed 1, twice as long as offline by default) and configuration: a fresh
worker (``streamlearn run``, drift detection on) joins its group and settles; then the
stream's examples are produced at once, each event followed by its label on
``<name>.labels``. Events/s is counted from 1% of them served until all are served *and*
learned: the learner runs on the hot path's thread after the predictor, and in a burst the
predictor runs ahead, so the time to learn the last event is the time the worker needed for
all of them (a window on predictions alone would leave the learner's backlog out, and one
ending at 90% learned would cut it in an arbitrary place). Configurations
run interleaved, ``--reps`` rounds; the figure is the median of each configuration's runs,
and its ratio to ``single`` on the same stream.

``python -m benchmarks.policy_throughput [--streams fraud] [--reps 3] [--scale 2]`` writes
``benchmarks/results/policy_throughput.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from benchmarks import drift_policies
from benchmarks.harness import broker
from benchmarks.options import RESULTS
from benchmarks.scale_out import (
    LEARNER_CLAIM_S,
    START_MS,
    alive,
    cpu_seconds,
    fresh,
    produce,
    settled,
    start_workers,
    stop,
    wait_served,
)

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "benchmarks" / "pipelines" / "policies.py"
CONFIGS = ("single", *drift_policies.POLICY_NAMES)
SEED = 1
METRICS_PORT = 9500


def rows(stream: str, scale: float) -> list[tuple[dict, dict]]:
    """The stream's examples as (event, label) records, 10 ms apart in event time."""
    examples, _ = drift_policies.stream(stream, SEED, scale)
    out = []
    for i, (x, y) in enumerate(examples):
        t = START_MS + i * 10
        out.append(({"event_id": f"e{i}", "time": t, **{str(k): v for k, v in x.items()}},
                    {"event_id": f"e{i}", "label": bool(y), "time": t}))
    return out


def learned(name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(v) for labels, v in re.findall(
        r"^streamlearn_examples_learned_total\{([^}]*)\} (\S+)$", text, re.M)
        if f'pipeline="{name}"' in labels)


def run(bootstrap: str, stream: str, config: str, data: list, env: dict[str, str]) -> dict:
    chosen = {"BENCH_STREAM": stream, "BENCH_POLICY": config}
    os.environ.update(chosen)  # the pipeline file reads them here too (topics, name)
    name, spec = fresh(bootstrap, PIPELINE)
    procs = start_workers(bootstrap, name, 1, {**env, **chosen}, PIPELINE)
    try:
        settled(bootstrap, spec.group_id, 1, procs)
        time.sleep(LEARNER_CLAIM_S)
        # Produced on a thread: the clock starts at the first 1% served, not after the
        # whole burst is written (by then the worker would be well into it).
        producing = threading.Thread(target=produce, args=(bootstrap, name, data))
        producing.start()
        n0 = wait_served(bootstrap, spec.predictions_topic, len(data) // 100, procs, 1)
        t0, c0 = time.monotonic(), cpu_seconds([p.pid for p in procs])
        deadline = time.monotonic() + 600
        while learned(name) < len(data):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: the learner did not learn {len(data):,} in 600 s")
            alive(procs)
            time.sleep(0.05)
        t1, c1 = time.monotonic(), cpu_seconds([p.pid for p in procs])
        producing.join()
    finally:
        stop(procs)
    done = len(data) - n0
    return {"events_per_s": done / (t1 - t0), "events_per_cpu_s": done / (c1 - c0)}


def measure(bootstrap: str, streams: list[str], reps: int, scale: float) -> dict[str, Any]:
    env = {"STREAMLEARN_MODEL_KEY": "bench", "STREAMLEARN_DRIFT": "on",
           "STREAMLEARN_PUBLISH_INTERVAL": "1"}
    result: dict[str, Any] = {"reps": reps, "seed": SEED, "scale": scale, "streams": {}}
    for stream in streams:
        data = rows(stream, scale)
        runs: dict[str, list[dict]] = {c: [] for c in CONFIGS}
        for rep in range(reps):
            order = CONFIGS[rep % len(CONFIGS):] + CONFIGS[:rep % len(CONFIGS)]
            for config in order:
                runs[config].append(run(bootstrap, stream, config, data, env))
                print(f"{stream} rep {rep + 1} {config}: "
                      f"{runs[config][-1]['events_per_s']:,.0f} events/s", flush=True)
        medians = {c: statistics.median(r["events_per_s"] for r in rs) for c, rs in runs.items()}
        result["streams"][stream] = {
            "events": len(data), "events_per_s": medians,
            "ratio": {c: medians[c] / medians["single"] for c in CONFIGS}, "runs": runs}
    return result


def report(result: dict[str, Any]) -> str:
    lines = [
        "# Drift policies in a running worker: events/s against the single model",
        "",
        "Written by `python -m benchmarks.policy_throughput` (module docstring: method). "
        f"Seed {result['seed']}, medians of {result['reps']} interleaved runs, "
        f"{os.cpu_count()} CPUs.",
        "",
        "| stream | events | single events/s | " + " | ".join(CONFIGS[1:]) + " |",
        "|---|---|---|" + "---|" * (len(CONFIGS) - 1),
    ]
    for stream, r in result["streams"].items():
        lines.append(f"| {stream} | {r['events']:,} | {r['events_per_s']['single']:,.0f} | "
                     + " | ".join(f"{r['events_per_s'][c]:,.0f} ({r['ratio'][c]:.2f}x)"
                                  for c in CONFIGS[1:]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default=",".join(drift_policies.STREAMS))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--scale", type=float, default=2.0,
                        help="stream length against the offline benchmark's (default 2: "
                             "40,000 fraud payments, 80,000 SEA or Agrawal examples)")
    parser.add_argument("--bootstrap")
    args = parser.parse_args(argv)
    bootstrap, _ = broker(args.bootstrap or os.environ.get("STREAMLEARN_BOOTSTRAP"))
    result = measure(bootstrap, args.streams.split(","), args.reps, args.scale)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "policy_throughput.json").write_text(
        orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    (RESULTS / "policy_throughput.md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
