"""The benchmark workloads and their input events (River's Phishing rows, cycled).

>>> payloads = make_events(3, prefix="ev")
>>> [orjson.loads(p)["event_id"] for p in payloads]
['ev-0', 'ev-1', 'ev-2']
>>> 200 <= len(payloads[0]) <= 260
True
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "EVENT_ID_FIELD",
    "LABEL_FIELD",
    "WORKLOADS",
    "Workload",
    "make_events",
    "model_factory",
]

EVENT_ID_FIELD = "event_id"
LABEL_FIELD = "is_phishing"
PIPELINES = Path(__file__).resolve().parent / "pipelines"


@dataclass(frozen=True)
class Workload:
    key: str
    """Short name: also the module ``benchmarks.pipelines.<key>``."""
    title: str

    @property
    def pipeline_file(self) -> Path:
        return PIPELINES / f"{self.key}.py"


WORKLOADS = {
    "logreg": Workload("logreg", "StandardScaler | LogisticRegression"),
    "tree": Workload("tree", "HoeffdingAdaptiveTreeClassifier"),
}


def model_factory(workload_key: str) -> Callable[[], Any]:
    """The same model factory the streamlearn pipeline file of the workload uses."""
    module = importlib.import_module(f"benchmarks.pipelines.{workload_key}")
    factory: Callable[[], Any] = module.model
    return factory


def make_events(n: int, prefix: str) -> list[bytes]:
    """``n`` JSON events: Phishing rows cycled, each with a unique id and its label."""
    from river import datasets

    rows = [(x, y) for x, y in datasets.Phishing()]
    events = itertools.islice(itertools.cycle(rows), n)
    return [
        orjson.dumps({**x, EVENT_ID_FIELD: f"{prefix}-{i}", LABEL_FIELD: y})
        for i, (x, y) in enumerate(events)
    ]
