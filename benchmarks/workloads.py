"""The benchmark workloads and their input events (River's Phishing rows, cycled).

>>> events = make_events(3, prefix="ev")
>>> [key for key, _ in events]
[b'ev-0', b'ev-1', b'ev-2']
>>> orjson.loads(events[2][1])["event_id"], 200 <= len(events[0][1]) <= 260
('ev-2', True)
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
    "Event",
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
    factory: Callable[[], Any] = module.pipeline.model
    return factory


Event = tuple[bytes, bytes]
"""(record key, JSON value); the key is the event id."""


def make_events(n: int, prefix: str) -> list[Event]:
    """``n`` JSON events: Phishing rows cycled, each with a unique id and its label."""
    from river import datasets

    rows = [(x, y) for x, y in datasets.Phishing()]
    events = []
    for i, (x, y) in enumerate(itertools.islice(itertools.cycle(rows), n)):
        event_id = f"{prefix}-{i}"
        value = orjson.dumps({**x, EVENT_ID_FIELD: event_id, LABEL_FIELD: y})
        events.append((event_id.encode(), value))
    return events
