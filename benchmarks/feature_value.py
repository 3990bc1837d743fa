"""What derived features buy: the fraud model's prequential score with and without them.

The same seeded fraud stream (``streamlearn.datasets.fraud``, with its drift halfway) and
the same model (``benchmarks/pipelines/fraud.py`` against ``fraud_raw.py``), learned
test-then-train in stream order. The inputs are what the worker serves: the offline twin
computes them with the worker's own code (``tests/integration/test_features_online.py``
checks the two agree value for value). Accuracy is what the worker exports; with ~3% fraud
it barely moves, so ROC AUC (River's ``metrics.ROCAUC`` on the served probability) is the
figure to read, before and after the drift.

``python -m benchmarks.feature_value [--events N] [--seed S]`` prints a markdown table and
writes it to ``benchmarks/results/feature_value.md``.

>>> rows = measure(2_000, seed=1)
>>> [r["workload"] for r in rows]
['fraud', 'fraud_raw']
>>> all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
True
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from river import metrics

from streamlearn.datasets import fraud
from streamlearn.features.offline import OfflineRun
from streamlearn.spec.pipeline import load_pipeline

PIPELINES = Path(__file__).resolve().parent / "pipelines"
RESULTS = Path(__file__).resolve().parent / "results"


def measure(events: int, seed: int = 7) -> list[dict[str, Any]]:
    stream = list(fraud.generate(events, seed=seed))
    drift_at = events // 2
    rows = []
    for workload in ("fraud", "fraud_raw"):
        spec = load_pipeline(PIPELINES / f"{workload}.py")
        model = spec.model()
        scores = {part: (metrics.ROCAUC(), metrics.Accuracy()) for part in ("before", "after")}
        total = metrics.ROCAUC(), metrics.Accuracy()
        for row in OfflineRun(spec).rows(enumerate(stream)):
            p = model.predict_proba_one(row.x).get(True, 0.0)
            part = "before" if row.index < drift_at else "after"
            for auc, accuracy in (scores[part], total):
                auc.update(row.label, p)
                accuracy.update(row.label, p > 0.5)
            model.learn_one(row.x, row.label)
        rows.append({
            "workload": workload, "inputs": len(spec.features or {}) + len(spec.derived or {}),
            "auc": total[0].get(), "accuracy": total[1].get(),
            "auc_before": scores["before"][0].get(), "auc_after": scores["after"][0].get(),
        })
    return rows


def table(rows: list[dict[str, Any]], events: int, seed: int) -> str:
    lines = [
        f"Fraud stream: {events:,} events, seed {seed}, drift at event {events // 2:,}; "
        "prequential (test-then-train) in stream order.",
        "",
        "| pipeline | model inputs | ROC AUC | accuracy | ROC AUC before drift | after |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['workload']} | {r['inputs']} | {r['auc']:.3f} | {r['accuracy']:.4f} | "
              f"{r['auc_before']:.3f} | {r['auc_after']:.3f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    text = table(measure(args.events, args.seed), args.events, args.seed)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "feature_value.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
