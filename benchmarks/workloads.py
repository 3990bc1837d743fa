"""The benchmark workloads and their input events.

Two sources. ``phishing`` (logreg, tree): River's Phishing rows cycled to N events, keyed by
their unique event id. ``fraud`` (fraud, fraud_raw): ``streamlearn.datasets.fraud``'s seeded
card payments, keyed by card as a producer of the pipeline must key them, each with a unique
``tx_id``.

>>> events = make_events(3, prefix="ev")
>>> [key for key, _ in events]
[b'ev-0', b'ev-1', b'ev-2']
>>> orjson.loads(events[2][1])["event_id"], 200 <= len(events[0][1]) <= 260
('ev-2', True)
>>> payments = make_events(2, prefix="ev", source=FRAUD)
>>> key, value = payments[1]
>>> key.decode() == orjson.loads(value)["card"], orjson.loads(value)["tx_id"]
(True, 'ev-1')
>>> print(*orjson.loads(model_rows("fraud", payments)[1]))  # what contender B reads
amount merchant n_10m n_1h amount_mean_1d amount_max_1h merchants_1h tx_id is_fraud
>>> from streamlearn.datasets import fraud
>>> w = WORKLOADS["fraud"]
>>> (w.id_field, w.label_field) == (fraud.EVENT_ID_FIELD, fraud.LABEL_FIELD)
True
>>> [w.key for w in groups(["logreg", "fraud_raw", "fraud"])[1]]  # run together, interleaved
['fraud', 'fraud_raw']
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from streamlearn.spec.pipeline import Pipeline

__all__ = [
    "EVENT_ID_FIELD",
    "FRAUD",
    "FRAUD_SEED",
    "LABEL_FIELD",
    "PHISHING",
    "WORKLOADS",
    "Event",
    "Workload",
    "event_ids",
    "groups",
    "make_events",
    "model_factory",
    "model_rows",
    "pipeline_of",
]

EVENT_ID_FIELD = "event_id"
LABEL_FIELD = "is_phishing"
PIPELINES = Path(__file__).resolve().parent / "pipelines"
PHISHING, FRAUD = "phishing", "fraud"
FRAUD_SEED = 42


@dataclass(frozen=True)
class Workload:
    key: str
    """Short name: also the module ``benchmarks.pipelines.<key>``."""
    title: str
    source: str = PHISHING
    id_field: str = EVENT_ID_FIELD
    label_field: str = LABEL_FIELD
    contenders: tuple[str, ...] = ()
    """The only contenders that run it; empty means every one."""
    baseline: str | None = None
    """The workload it is compared with: both run in the same interleaved rounds."""

    @property
    def pipeline_file(self) -> Path:
        return PIPELINES / f"{self.key}.py"


def _fraud(key: str, title: str, baseline: str | None = None) -> Workload:
    # The hand-written loops compare the hot path, which logreg and tree already cover; the
    # fraud pair measures what derived features cost the worker (A), next to the model (B).
    return Workload(key, title, FRAUD, id_field="tx_id", label_field="is_fraud",
                    contenders=("A", "B"), baseline=baseline)


WORKLOADS = {
    "logreg": Workload("logreg", "StandardScaler | LogisticRegression"),
    "tree": Workload("tree", "HoeffdingAdaptiveTreeClassifier"),
    "fraud": _fraud("fraud", "examples/fraud.py: 7 per-card windowed features, then its "
                    "logistic regression", baseline="fraud_raw"),
    "fraud_raw": _fraud("fraud_raw", "the fraud pipeline's model on its raw fields, no "
                        "derived features"),
}


def groups(keys: Iterable[str]) -> list[list[Workload]]:
    """The workloads to run, each with its baseline (if asked for) in one group."""
    chosen = [WORKLOADS[k] for k in dict.fromkeys(keys)]
    asked = {w.key for w in chosen}
    baselines = {w.baseline for w in chosen if w.baseline in asked}
    return [
        [w, *([WORKLOADS[w.baseline]] if w.baseline in asked else [])]
        for w in chosen if w.key not in baselines
    ]


def pipeline_of(workload_key: str) -> Pipeline:
    """The streamlearn pipeline file of the workload (what contender A runs)."""
    module = importlib.import_module(f"benchmarks.pipelines.{workload_key}")
    pipeline: Pipeline = module.pipeline
    return pipeline


def model_factory(workload_key: str) -> Callable[[], Any]:
    """The same model factory the streamlearn pipeline file of the workload uses."""
    factory: Callable[[], Any] = pipeline_of(workload_key).model
    return factory


Event = tuple[bytes, bytes]
"""(record key, JSON value): the key is the event id (phishing) or the card (fraud)."""


def make_events(n: int, prefix: str, source: str = PHISHING) -> list[Event]:
    """``n`` JSON events of ``source``, the i-th with the unique id ``<prefix>-<i>``."""
    if source == FRAUD:
        return _fraud_events(n, prefix)
    from river import datasets

    rows = [(x, y) for x, y in datasets.Phishing()]
    events = []
    for i, (x, y) in enumerate(itertools.islice(itertools.cycle(rows), n)):
        event_id = f"{prefix}-{i}"
        value = orjson.dumps({**x, EVENT_ID_FIELD: event_id, LABEL_FIELD: y})
        events.append((event_id.encode(), value))
    return events


def _fraud_events(n: int, prefix: str) -> list[Event]:
    from streamlearn.datasets import fraud

    events = []
    for i, payment in enumerate(fraud.generate(n, seed=FRAUD_SEED)):
        payment[fraud.EVENT_ID_FIELD] = f"{prefix}-{i}"
        events.append((str(payment[fraud.KEY_FIELD]).encode(), orjson.dumps(payment)))
    return events


def event_ids(workload_key: str, events: Sequence[Event]) -> frozenset[bytes]:
    """The ids a contender's outputs must carry, one per event."""
    field = WORKLOADS[workload_key].id_field
    return frozenset(orjson.loads(value)[field].encode() for _, value in events)


def model_rows(workload_key: str, events: Sequence[Event]) -> list[bytes]:
    """What the model sees per event, as JSON with the event's id and label (contender B).

    Phishing events are that already. For a pipeline with derived features, they are the
    offline twin's (``streamlearn.features.offline``), the values the worker serves, computed
    here, before any timing.
    """
    workload = WORKLOADS[workload_key]
    if workload.source == PHISHING:
        return [value for _, value in events]
    from streamlearn.features.offline import OfflineRun

    decoded = [orjson.loads(value) for _, value in events]
    return [
        orjson.dumps({**row.x, workload.id_field: decoded[row.index][workload.id_field],
                      workload.label_field: row.label})
        for row in OfflineRun(pipeline_of(workload_key)).rows(enumerate(decoded))
    ]
