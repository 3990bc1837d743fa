"""What a model snapshot costs the worker: build time, bytes, chunks (in process, no Kafka).

The workload's model is trained test-then-train on the benchmark's N events (with their
derived features, if the workload has any), as the worker would have it after N examples,
then ``build_snapshot`` (pickle, chunk, digest, sign) is timed a few times. The worker
snapshots every ``STREAMLEARN_SNAPSHOT_EVERY`` examples or ``STREAMLEARN_SNAPSHOT_INTERVAL``
seconds, whichever comes first; at full rate the examples count rules, so the amortized cost
per event is the build time / ``snapshot_every``. A build on the hot path also stalls that
batch for its whole duration: a p99 cost, not a mean one.

``python -m benchmarks.snapshot_cost [--events N]`` prints the figures without the harness.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson

from benchmarks.stats import median
from benchmarks.workloads import WORKLOADS, make_events, model_factory, model_rows
from streamlearn.config import Settings
from streamlearn.models.online import OnlineModel
from streamlearn.models.snapshot import build_snapshot

__all__ = ["measure_snapshot"]

KEY = b"bench-key"


def trained_model(workload: str, n: int) -> OnlineModel:
    w = WORKLOADS[workload]
    model = OnlineModel(model_factory(workload)())
    for raw in model_rows(workload, make_events(n, "snapshot", w.source)):
        x = orjson.loads(raw)
        del x[w.id_field]
        y = x.pop(w.label_field)
        served, _ = model.predict(x)
        model.learn(x, y, served)
    return model


def measure_snapshot(workload: str, n: int, reps: int) -> dict[str, Any]:
    """Median build time of a snapshot of ``workload``'s model after ``n`` examples."""
    # The worker's defaults: the harness starts A without any snapshot setting.
    settings = Settings()
    model = trained_model(workload, n)
    seconds = []
    for i in range(reps):
        start = time.perf_counter()
        snap = build_snapshot(
            model, model_name="partition-0", snapshot_id=i + 1, parent=i or None,
            offsets={"bench.events": {0: n}}, fingerprint="bench", key=KEY,
            chunk_bytes=settings.snapshot_chunk_bytes,
        )
        seconds.append(time.perf_counter() - start)
    ms = (median(seconds) or 0.0) * 1000
    return {
        "workload": workload,
        "examples": model.version,
        "reps": reps,
        "build_ms": ms,
        "build_ms_all": [s * 1000 for s in seconds],
        "bytes": snap.manifest["bytes"],
        "chunks": len(snap.chunks),
        "chunk_bytes": settings.snapshot_chunk_bytes,
        "every_examples": settings.snapshot_every,
        "every_s": settings.snapshot_interval,
        "us_per_event": ms * 1000 / settings.snapshot_every,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    for workload in WORKLOADS:
        print(orjson.dumps(measure_snapshot(workload, args.events, args.reps)).decode())


if __name__ == "__main__":
    main()
