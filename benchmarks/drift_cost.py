"""What drift detection costs the worker's per-event work: on against off, in process.

The worker's processor (decode, check, predict, served record, learn, and with detection on:
ADWIN and DDM on the error, ADWIN on each numeric field, the per-batch binning) runs over
20,000 events of the logreg workload (Phishing's 9 numeric fields) in batches of 500,
emitting to nowhere; on and off alternate, fresh model each pass, median of ``reps``. No
Kafka: through Kafka both sides also pay the client's cost, so the ratio there is closer
to 1 than here.

``python -m benchmarks.drift_cost [--events N] [--reps R]``

>>> r = measure(events=400, reps=1)
>>> r["on_us"] > 0 and r["off_us"] > 0
True
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from river import datasets

from streamlearn.models.drift import DriftOptions
from streamlearn.models.online import OnlineModel
from streamlearn.monitoring import metrics
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.streams.processor import PartitionProcessor, ProcessorOptions

PIPELINE = Path(__file__).resolve().parent / "pipelines" / "logreg.py"
BATCH = 500


class _Message:
    __slots__ = ("_offset", "_value")

    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def topic(self) -> str:
        return "logreg"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_767_225_600_000)

    def key(self) -> None:
        return None

    def value(self) -> bytes:
        return self._value

    def headers(self) -> None:
        return None


def _nowhere(topic: str, value: bytes, key: bytes | None, *, headers: Any = None) -> None:
    pass


def _pass(spec: Any, messages: list[_Message], enabled: bool) -> float:
    model = OnlineModel(spec.model(), adwin_delta=0.002 if enabled else None)
    bound = metrics.create(CollectorRegistry()).bind(spec.name, model.name)
    processor = PartitionProcessor(spec, model, bound,
                                   ProcessorOptions(1 << 20, drift=DriftOptions(enabled=enabled)))
    started = time.perf_counter()
    for i in range(0, len(messages), BATCH):
        batch: list[Any] = messages[i:i + BATCH]  # duck-typed SourceMessages
        processor.process_batch(batch, _nowhere)
    return (time.perf_counter() - started) / len(messages) * 1e6


def measure(events: int = 20_000, reps: int = 5) -> dict[str, float]:
    spec = load_pipeline(PIPELINE)
    rows = itertools.islice(itertools.cycle(list(datasets.Phishing())), events)
    messages = [_Message(orjson.dumps({**x, "event_id": f"e{i}", "is_phishing": y}), i)
                for i, (x, y) in enumerate(rows)]
    on, off = [], []
    for rep in range(reps + 1):
        order = (True, False) if rep % 2 else (False, True)
        times = {enabled: _pass(spec, messages, enabled) for enabled in order}
        if rep:  # the first round warms up
            on.append(times[True])
            off.append(times[False])
    on_us, off_us = statistics.median(on), statistics.median(off)
    return {"on_us": on_us, "off_us": off_us, "events_per_s_ratio": off_us / on_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    r = measure(args.events, args.reps)
    print(f"logreg, 9 numeric fields, {args.events:,} events, median of {args.reps}: "
          f"{r['off_us']:.1f} µs/event off, {r['on_us']:.1f} on; events/s on/off "
          f"{r['events_per_s_ratio']:.2f} (cost {1 - r['events_per_s_ratio']:.0%}; "
          "target: at most 20%)")


if __name__ == "__main__":
    main()
