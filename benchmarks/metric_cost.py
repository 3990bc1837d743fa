"""What the chosen metrics cost per event: scoring one example (prequential and rolling
update of every metric) and reading them for the exporter (once per batch).

The streams are what a worker scores: the Phishing logistic regression's served label and
probabilities test-then-train (boolean label), ``ImageSegments``' softmax regression (7
classes: categorical) and ``TrumpApproval``'s linear regression (numeric), each data set
cycled to the number of events. Each metric set is timed on the
same precomputed stream, in interleaved rounds (one round times every set once), and the
median per-event CPU time of the rounds is reported; nothing here touches Kafka. Beside
the defaults by label type: accuracy alone (what every classifier was scored with before
metrics became a choice), the fraud example's four metrics, and River's own ``ROCAUC`` in
``utils.Rolling`` (what the histogram form of ROC AUC replaces).

``python -m benchmarks.metric_cost [--rounds R]`` writes
``benchmarks/results/metric_cost.{md,json}``.

>>> costs = measure(rounds=1, events=300)
>>> list(costs)[:2]
['accuracy (boolean)', 'default, boolean: roc_auc, accuracy']
>>> all(c["score_us"] > 0 for c in costs.values())
True
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from river import datasets, linear_model, metrics, preprocessing, utils

from benchmarks.machine import cpu_model, versions
from benchmarks.stats import median
from streamlearn.models.scoring import Scoring

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 500
"""Events per batch the exporter reads the metrics for (the worker's default batch)."""

Stream = list[tuple[Any, Any, Any]]


def _classified(data: Any, model: Any, n: int) -> Stream:
    out = []
    for x, y in itertools.islice(data, n):
        proba = model.predict_proba_one(x)
        label = max(proba, key=proba.get) if proba else None
        out.append((y, label, proba))
        model.learn_one(x, y)
    return out


def streams(events: int) -> dict[str, Stream]:
    boolean = list(itertools.islice(itertools.cycle(_classified(
        datasets.Phishing(), preprocessing.StandardScaler()
        | linear_model.LogisticRegression(), events)), events))
    categorical = _classified(
        itertools.cycle(list(datasets.ImageSegments())),
        preprocessing.StandardScaler() | linear_model.SoftmaxRegression(), events)
    model = preprocessing.StandardScaler() | linear_model.LinearRegression()
    numeric = []
    for x, y in itertools.islice(itertools.cycle(list(datasets.TrumpApproval())), events):
        numeric.append((y, model.predict_one(x), None))
        model.learn_one(x, y)
    return {"boolean": boolean, "categorical": categorical, "numeric": numeric}


class _RiverROCAUC:
    """River's ROCAUC prequential and in ``utils.Rolling`` (a confusion matrix per
    threshold, each updated and reverted)."""

    def __init__(self) -> None:
        self.metric = metrics.ROCAUC()
        self.rolling = utils.Rolling(metrics.ROCAUC, window_size=1000)

    def update(self, y: Any, label: Any, proba: Any) -> None:
        if proba:
            self.metric.update(y, proba)
            self.rolling.update(y, proba)

    def values(self) -> list[float]:
        return [self.metric.get()]

    def rolling_values(self) -> list[float]:
        return [self.rolling.get()]


CASES: dict[str, tuple[str, Callable[[], Any]]] = {
    "accuracy (boolean)": ("boolean", lambda: Scoring.of(["accuracy"]).new()),
    "default, boolean: roc_auc, accuracy": (
        "boolean", lambda: Scoring.default("boolean", True).new()),
    "fraud example: roc_auc, precision, recall, accuracy": (
        "boolean", lambda: Scoring.of(["roc_auc", "precision", "recall", "accuracy"]).new()),
    "River's ROCAUC + utils.Rolling (boolean)": ("boolean", _RiverROCAUC),
    "default, categorical: macro_f1, accuracy": (
        "categorical", lambda: Scoring.default("categorical", True).new()),
    "default, numeric: mae, rmse": ("numeric", lambda: Scoring.default("numeric", False).new()),
}


def _time(make: Callable[[], Any], stream: Stream) -> tuple[float, float]:
    """(µs of CPU per scored event, µs per read of every value)."""
    scorer = make()
    update = scorer.update
    start = time.process_time()
    for y, label, proba in stream:
        update(y, label, proba)
    score = (time.process_time() - start) / len(stream) * 1e6
    reads = max(1, len(stream) // BATCH)
    start = time.process_time()
    for _ in range(reads):
        scorer.values()
        scorer.rolling_values()
    return score, (time.process_time() - start) / reads * 1e6


def measure(rounds: int = 7, events: int = 20_000) -> dict[str, dict[str, Any]]:
    data = streams(events)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in CASES}
    for _ in range(rounds):
        for name, (kind, make) in CASES.items():
            runs[name].append(_time(make, data[kind]))
    out = {}
    for name, timed in runs.items():
        score = median([t[0] for t in timed]) or 0.0
        read = median([t[1] for t in timed]) or 0.0
        out[name] = {"score_us": score, "read_us": read,
                     "per_event_us": score + read / BATCH, "rounds": timed}
    return out


def markdown(costs: dict[str, dict[str, Any]], rounds: int, events: int) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Metric cost per event, {stamp}, {cpu_model()}, river {versions()['river']}: "
        f"{events:,} events, median of {rounds} interleaved rounds, CPU time "
        f"(`python -m benchmarks.metric_cost`).",
        "",
        "| metrics | score one example (µs) | read all, per batch (µs) | per event, with a read "
        f"every {BATCH} events (µs) |",
        "|---|---|---|---|",
    ]
    for name, c in costs.items():
        lines.append(f"| {name} | {c['score_us']:.2f} | {c['read_us']:.1f} | "
                     f"{c['per_event_us']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    costs = measure(args.rounds, args.events)
    text = markdown(costs, args.rounds, args.events)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "metric_cost.md").write_text(text)
    (RESULTS / "metric_cost.json").write_bytes(orjson.dumps(
        {"rounds": args.rounds, "events": args.events, "costs": costs},
        option=orjson.OPT_INDENT_2))
    print(text)


if __name__ == "__main__":
    main()
