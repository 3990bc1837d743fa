"""Contender B: the model alone in a Python loop over the same JSON events, no Kafka.

Prints one JSON line: the loop's events/s (decode, predict, encode, learn), and the rate of
the bare model calls on pre-decoded events (``model_events_per_s``). A workload with derived
features gets them already computed in its events file (``workloads.model_rows``): B times
the model, not the features.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

from benchmarks.contenders.work import PredictLearn
from benchmarks.workloads import WORKLOADS, model_factory


def json_loop(workload: str, payloads: list[bytes]) -> tuple[int, float]:
    handle = PredictLearn.for_workload(workload).handle
    outputs = 0
    start = time.perf_counter()
    # Outputs are counted, not kept: a list of 20k of them made the garbage collector cost
    # B ~15% on logreg (measured), work no Kafka loop does (they hold one batch at most).
    for raw in payloads:
        handle(raw)
        outputs += 1
    return outputs, time.perf_counter() - start


def model_loop(workload: str, payloads: list[bytes]) -> float:
    model = model_factory(workload)()
    id_field, label_field = WORKLOADS[workload].id_field, WORKLOADS[workload].label_field
    examples = []
    for raw in payloads:
        x = orjson.loads(raw)
        del x[id_field]
        examples.append((x, x.pop(label_field)))
    predict, learn = model.predict_proba_one, model.learn_one
    start = time.perf_counter()
    for x, y in examples:
        predict(x)
        learn(x, y)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events-file", required=True, type=Path, help="One JSON per line.")
    parser.add_argument("--workload", required=True)
    args = parser.parse_args()
    payloads = args.events_file.read_bytes().splitlines()
    outputs, seconds = json_loop(args.workload, payloads)
    model_seconds = model_loop(args.workload, payloads)
    result = {
        "events": len(payloads),
        "outputs": outputs,
        "seconds": seconds,
        "events_per_s": len(payloads) / seconds,
        "model_events_per_s": len(payloads) / model_seconds,
    }
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
