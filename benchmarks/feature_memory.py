"""What derived features cost the worker, in process and without Kafka: memory and CPU.

Memory: one partition's feature state (``spec.feature_set.partition(0)``, as the worker
builds it) is fed ``events_per_entity`` events for each of N distinct entities, round after
round with increasing times, all within the shortest window and never late, so the state
holds every event: ``tracemalloc`` measures the Python heap it grew by. Events are made the
way the worker gets them (fresh strings and floats, as a JSON decoder returns, checked by
the pipeline's schema) and passed with their offsets. "Held" is measured after a checkpoint
(``checkpoint_records``), when the state is the entities alone; "before the checkpoint"
includes the change log the state keeps until then. The checkpoint's records (key + value
bytes) are what the worker writes to ``<name>.state`` for them; a checkpoint after one more
event per entity is bigger, since each record also carries the entity's previous value.

CPU: ``PartitionFeatures.values`` alone, timed over the throughput runs' fraud stream
(``streamlearn.datasets.fraud``, checked and keyed before the clock starts), in a fresh
partition each time; median of ``reps`` passes.

``python -m benchmarks.feature_memory [--entities N] [--events N]`` prints the figures; the
harness runs it that way (:func:`measure_apart`), so that what tracemalloc and the feature
state leave behind stays out of the harness's process.

>>> m = measure_feature_memory("fraud", entities=50, events=200, reps=1)
>>> m["entities"], m["events_per_entity"], m["checkpoint_records"]
(50, 5, 51)
>>> m["bytes_per_entity"] > 0 and m["checkpoint_bytes"] > 0 and m["us_per_event"] > 0
True
"""

from __future__ import annotations

import argparse
import gc
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from benchmarks.stats import median
from benchmarks.workloads import FRAUD_SEED, pipeline_of
from streamlearn.features.offline import entity_id, read_key
from streamlearn.features.online import PartitionFeatures
from streamlearn.spec.pipeline import Pipeline
from streamlearn.spec.schema import parse_time

__all__ = ["PER", "measure_apart", "measure_feature_memory"]

PER = 100_000
"""Memory figures are given per this many entities."""
MIB = 2**20
ROOT = Path(__file__).resolve().parent.parent
START_MS = 1_767_225_600_000
SPAN_MS = 500_000
"""Every payment of the memory measurement falls within it: less than the shortest window of
the fraud pipeline (10 minutes), so no entity drops an event."""
Arguments = tuple[dict[str, Any], dict[str, Any], str, int | float, int]
"""What the worker passes to ``PartitionFeatures.values``: event, x, entity, time, offset."""


def _arguments(spec: Pipeline, events: Iterator[dict[str, Any]]) -> Iterator[Arguments]:
    """The worker's calls for these events: checked, keyed, timed (ms, an int if whole)."""
    schema, field = spec.schema(), spec.time_field
    if not field:
        raise ValueError(f"pipeline {spec.name!r} has no time_field; events here carry one")
    for offset, event in enumerate(events):
        x, _, _ = schema.check(event)
        t = parse_time(event.get(field), field)
        key = entity_id(read_key(event, spec.key_field))
        yield event, x, key, int(t) if t.is_integer() else t, offset


def _payments(entities: int, rounds: range, step_ms: float) -> Iterator[dict[str, Any]]:
    """A payment per card ``c0``.. per round, ``step_ms`` apart, round after round."""
    rng = random.Random(FRAUD_SEED)
    for r in rounds:
        for i in range(entities):
            yield {"tx_id": f"tx-{r}-{i}", "card": f"c{i}", "merchant": f"m{rng.randrange(300)}",
                   "amount": round(rng.uniform(1.0, 300.0), 2),
                   "time": START_MS + int((r * entities + i) * step_ms), "is_fraud": False}


def _feed(features: PartitionFeatures, calls: Iterator[Arguments], offset: int = 0) -> None:
    values = features.values
    for event, x, key, t, n in calls:
        values(event, x, key, t, offset + n)


def _heap() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _checkpoint(features: PartitionFeatures, ck: int) -> list[tuple[str, bytes | None]]:
    """Every record of checkpoint ``ck``: the changed entities', then the partition's meta."""
    records, meta = features.checkpoint_records(ck)
    return [*records, meta]


def _record_bytes(records: list[tuple[str, bytes | None]]) -> int:
    return sum(len(key.encode()) + len(value or b"") for key, value in records)


def memory(spec: Pipeline, entities: int, rounds: int) -> dict[str, Any]:
    """Heap and checkpoint bytes of ``entities`` entities holding ``rounds`` events each."""
    if not spec.feature_set:
        raise ValueError(f"pipeline {spec.name!r} declares no derived features")
    step_ms = SPAN_MS / (entities * (rounds + 1))
    tracemalloc.start()
    try:
        features = spec.feature_set.partition(0)
        base = _heap()
        _feed(features, _arguments(spec, _payments(entities, range(rounds), step_ms)))
        pending = _heap() - base
        records = _checkpoint(features, 1)
        first = _record_bytes(records)
        count = len(records)
        del records
        held = _heap() - base
    finally:
        tracemalloc.stop()
    more = _payments(entities, range(rounds, rounds + 1), step_ms)
    _feed(features, _arguments(spec, more), entities * rounds)
    following = _record_bytes(_checkpoint(features, 2))
    return {
        "entities": len(features.entities),
        "events_per_entity": rounds,
        "heap_bytes": held,
        "bytes_per_entity": held / entities,
        "mib_per_100k": held / entities * PER / MIB,
        "heap_bytes_before_checkpoint": pending,
        "mib_per_100k_before_checkpoint": pending / entities * PER / MIB,
        "checkpoint_records": count,
        "checkpoint_bytes": first,
        "checkpoint_mib_per_100k": first / entities * PER / MIB,
        "next_checkpoint_bytes": following,
        "next_checkpoint_mib_per_100k": following / entities * PER / MIB,
    }


def cpu(spec: Pipeline, events: int, reps: int) -> dict[str, Any]:
    """µs per event of ``PartitionFeatures.values`` over ``events`` fraud payments."""
    from streamlearn.datasets import fraud

    calls = list(_arguments(spec, fraud.generate(events, seed=FRAUD_SEED)))
    seconds = []
    for _ in range(reps):
        features = spec.feature_set.partition(0)
        start = time.perf_counter()
        _feed(features, iter(calls))
        seconds.append(time.perf_counter() - start)
    us = [s / events * 1e6 for s in seconds]
    return {"stream_events": events, "stream_entities": len(features.entities), "reps": reps,
            "us_per_event": median(us), "us_per_event_all": us}


def measure_feature_memory(
    workload: str, entities: int = PER, events_per_entity: int = 5, events: int = 20_000,
    reps: int = 5,
) -> dict[str, Any]:
    """Memory per entity (:func:`memory`) and µs per event (:func:`cpu`) of the features."""
    spec = pipeline_of(workload)
    return {"workload": workload, "features": len(spec.feature_set.derived),
            **memory(spec, entities, events_per_entity), **cpu(spec, events, reps)}


def measure_apart(workload: str, entities: int, events_per_entity: int, events: int,
                  reps: int) -> dict[str, Any]:
    """:func:`measure_feature_memory` in a process of its own."""
    argv = [sys.executable, "-m", "benchmarks.feature_memory", "--workload", workload,
            "--entities", str(entities), "--events-per-entity", str(events_per_entity),
            "--events", str(events), "--reps", str(reps)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:])} failed: {done.stderr.decode()[-800:]}")
    measured: dict[str, Any] = orjson.loads(done.stdout)
    return measured


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", default="fraud")
    parser.add_argument("--entities", type=int, default=PER)
    parser.add_argument("--events-per-entity", type=int, default=5)
    parser.add_argument("--events", type=int, default=20_000,
                        help="Fraud stream events for the µs/event figure.")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    measured = measure_feature_memory(args.workload, args.entities, args.events_per_entity,
                                      args.events, args.reps)
    sys.stdout.write(orjson.dumps(measured, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
