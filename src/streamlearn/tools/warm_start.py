"""``streamlearn bootstrap``: warm start a pipeline from a table of historical events.

The history is read with pandas (CSV or Parquet), put in event-time order, and run through
the offline twin of the pipeline's features, so the model learns from exactly the values a
worker would have served. Learning is test-then-train (progressive validation): the curve
of the pipeline's metrics (``Pipeline.metrics``), prequential and rolling, over the history
is what the command prints and plots.

Then the result is published the way a worker checkpoints: per input partition, the
feature state of the entities whose key hashes there (``<name>.state``) and a signed
snapshot of the model (``<name>.models``) with the events topic's current end offsets. A
worker started afterwards restores both and serves its first event warm. The snapshot also
carries the history as the data-drift reference of every field, the prediction and the
label, instead of the first live events. Per-partition learning: every partition starts
from the same model, trained on the whole history; each then learns its own events. Global
learning: the model is published once, as the global learner's first snapshot (at the
training topic's end), and each partition's snapshot holds its data-drift reference. With
candidates, every candidate learns the history (each predicts each row before learning it,
as the learner does) and the whole set is published; the curve is the champion's.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.features.offline import OfflineRun
from streamlearn.features.online import PartitionFeatures
from streamlearn.kafka.clients import kafka_config
from streamlearn.kafka.producer import Producer
from streamlearn.kafka.snapshots import SnapshotStore, end_offsets
from streamlearn.models.candidates import Candidates
from streamlearn.models.data_drift import DataDrift
from streamlearn.models.keys import old_model_keys
from streamlearn.models.online import OnlineModel, PredictorState
from streamlearn.models.snapshot import GLOBAL_MODEL, build_snapshot, partition_model
from streamlearn.spec.pipeline import Pipeline
from streamlearn.spec.schema import NUMERIC

__all__ = ["BootstrapError", "CurvePoint", "History", "learn_history", "plot", "publish", "table"]

CURVE_POINTS = 200
BOOTSTRAP_ACTION = {"kind": "bootstrap"}
"""The action of a snapshot ``bootstrap`` published (``models list`` shows it)."""


class BootstrapError(StreamlearnError):
    """The history cannot be used, or the pipeline already has a model."""


@dataclass(frozen=True)
class CurvePoint:
    examples: int
    event_time: float
    """Epoch ms of the example."""
    scores: tuple[float, ...]
    """Each of the pipeline's metrics, prequential so far (the primary first)."""
    rolling: tuple[float, ...]
    """Each over the last 1000 examples."""

    @staticmethod
    def of(model: OnlineModel, event_time: float) -> CurvePoint:
        scorer = model.scorer
        return CurvePoint(model.version, event_time, tuple(scorer.values()),
                          tuple(scorer.rolling_values()))


@dataclass
class History:
    """What learning the history left: the model, feature state, and the curve."""

    model: OnlineModel
    states: dict[tuple[int, int], PartitionFeatures]
    """Feature state by (stage, partition)."""
    curve: list[CurvePoint] = field(default_factory=list)
    dead_letters: dict[Any, str] = field(default_factory=dict)
    rows: int = 0
    candidates: Candidates | None = None
    """With candidates: the whole set, for the global learner (``model`` is its champion)."""


def learn_history(spec: Pipeline, frame: Any, advance: Callable[[int], None] = lambda n: None
                  ) -> History:
    """Learn ``frame`` (a pandas DataFrame of events) in event-time order, test-then-train."""
    if not spec.label_field:
        raise BootstrapError(f"pipeline {spec.name!r} has no label_field: bootstrap learns "
                             "from labelled history")
    time_column = spec.time_field or "timestamp"
    if time_column not in frame.columns:
        raise BootstrapError(f"the history has no {time_column!r} column (the event time)")
    if frame.empty:
        raise BootstrapError("the history is empty")
    import pandas as pd

    times = frame[time_column]
    if not pd.api.types.is_numeric_dtype(times):  # ISO-8601 text: order by the parsed time
        times = pd.to_datetime(times, utc=True, errors="coerce")
    ordered = frame.iloc[times.argsort(kind="stable")]
    candidates = (Candidates(spec.candidates(), policy=spec.policy(), scoring=spec.scoring)
                  if spec.has_candidates else None)
    model = (candidates.models[candidates.champion] if candidates is not None
             else OnlineModel(spec.model(), scoring=spec.scoring))
    run = OfflineRun(spec)
    every = max(1, len(ordered) // CURVE_POINTS)
    history = History(model, run.states, rows=len(ordered), candidates=candidates)
    records = zip(ordered.index, ordered.to_dict("records"), strict=True)
    fields = list(spec.features or {})
    seen: dict[str, list[Any]] = {f: [] for f in (*fields, "prediction", "label")}
    for n, row in enumerate(run.rows(records), start=1):
        if candidates is not None:  # the champion may change (a policy): follow it
            model = candidates.models[candidates.champion]
        prediction, proba = model.predict(row.x)
        if candidates is not None:
            candidates.learn(row.x, row.label, {candidates.champion: (prediction, proba)})
        else:
            model.learn(row.x, row.label, served=prediction, proba=proba)
        for f in fields:
            if row.x.get(f) is not None:
                seen[f].append(row.x[f])
        seen["prediction"].append(prediction)
        seen["label"].append(row.label)
        if n % every == 0:
            history.curve.append(CurvePoint.of(model, row.event_time))
            advance(every)
    advance(len(ordered) % every)
    last = history.curve[-1] if history.curve else None
    if model.version and (last is None or last.examples != model.version):
        history.curve.append(CurvePoint.of(model, row.event_time))
    history.dead_letters = run.dead_letters
    # Drift the history showed is this report's, not news: the live worker would publish
    # each pending signal (and fire the drift alert) on its first event.
    for learned in (candidates.models.values() if candidates is not None else [model]):
        learned.signals.clear()
    if candidates is not None:
        candidates.signals.clear()
    history.model = model
    model.data_drift = _reference(spec, model, seen)
    if not model.version:
        raise BootstrapError(f"no valid labelled event in the history ({len(ordered)} rows; "
                             f"dead-letter reasons: {sorted(set(run.dead_letters.values()))})")
    return history


def _reference(spec: Pipeline, model: OnlineModel, seen: dict[str, list[Any]]) -> DataDrift:
    """Data drift with the history as every field's reference (not the first live events)."""
    watch = DataDrift(dict(spec.features or {}))
    watch.add("prediction", not model.is_classifier, "prediction")
    watch.add("label", spec.label_type == NUMERIC, "label")
    for name, values in seen.items():
        watch.set_reference(name, [v for v in values if v is not None])
    return watch


def columns(names: tuple[str, ...]) -> list[str]:
    """The table's header: examples, event time, then each metric prequential and rolling."""
    return ["examples", "event time (UTC)",
            *(f"{kind}{name}" for name in names for kind in ("", "rolling "))]


def table(history: History, rows: int = 10) -> list[tuple[str, ...]]:
    """(examples, event time, then each metric prequential and rolling) at ``rows`` evenly
    spaced points of the curve."""
    curve = history.curve
    picks = sorted({curve[round(i * (len(curve) - 1) / max(rows - 1, 1))] for i in range(rows)},
                   key=lambda p: p.examples) if curve else []
    return [(f"{p.examples:,}", _iso(p.event_time),
             *(f"{v:.4f}" for pair in zip(p.scores, p.rolling, strict=True) for v in pair))
            for p in picks]


def plot(history: History, names: tuple[str, ...], title: str, path: Path) -> Path:
    """A PNG of each metric, prequential and rolling, over event time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times: Any = [dt.datetime.fromtimestamp(p.event_time / 1000, dt.UTC) for p in history.curve]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    for i, name in enumerate(names):
        line, = ax.plot(times, [p.scores[i] for p in history.curve],
                        label=f"prequential {name}")
        ax.plot(times, [p.rolling[i] for p in history.curve], color=line.get_color(),
                linestyle="--", alpha=0.7, label=f"rolling {name} (last 1000)")
    ax.set_xlabel("event time (UTC)")
    ax.set_ylabel(", ".join(names))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def publish(spec: Pipeline, settings: Settings, history: History, key: bytes,
            advance: Callable[[int], None] = lambda n: None) -> dict[int, int]:
    """Write each partition's feature state, then its snapshot; returns snapshot ids.

    Refuses a pipeline that already has a snapshot: a running pipeline's model is not
    replaced behind its back (``streamlearn reset`` first).
    """

    base = kafka_config(settings, f"streamlearn-bootstrap-{spec.name}")
    producer = Producer({**base, "acks": "all", "enable.idempotence": True})
    store = SnapshotStore(base, producer, spec.models_topic, key, spec.fingerprint(),
                          settings.snapshots_kept, old_keys=old_model_keys(settings))
    names = [partition_model(p) for p in range(spec.partitions)]
    if spec.global_learner:
        names.append(GLOBAL_MODEL)
    existing = [m for m, found in store.load(names, ignore_incompatible=True).items() if found]
    if existing or any(store.next_id(m) > 1 for m in names):
        raise BootstrapError(
            f"pipeline {spec.name!r} already has model snapshots on {spec.models_topic}; "
            f"`streamlearn reset` it first to start from the history"
        )
    ids = {}
    for stage in spec.stages:
        ends = end_offsets(base, stage.topic, spec.partitions)
        for p in range(spec.partitions):
            state = history.states.get((stage.index, p))
            if state is None and not stage.final:  # its position is in its meta record
                state = stage.features.partition(p, stage.operator)
            ck = store.next_id(partition_model(p)) if stage.final else 1
            if state is not None:
                entities, meta = state.checkpoint_records(ck, None if stage.final else ends[p])
                for record_key, value in entities:
                    producer.produce(spec.state_topic, key=record_key.encode(), value=value,
                                     partition=p)
                _flush(producer)  # the entities before what makes them count
                producer.produce(spec.state_topic, key=meta[0].encode(), value=meta[1],
                                 partition=p)
            if stage.final:
                payload: OnlineModel | PredictorState = history.model
                if spec.global_learner:  # the model is the learner's; the reference is here
                    payload = PredictorState()
                    payload.data_drift = history.model.data_drift
                store.write(build_snapshot(
                    payload, model_name=partition_model(p), snapshot_id=ck,
                    parent=None, offsets={stage.topic: {p: ends[p]}},
                    fingerprint=spec.fingerprint(), key=key,
                    chunk_bytes=settings.snapshot_chunk_bytes,
                    meta=None if spec.global_learner else {
                        **history.model.manifest_scores(), "action": BOOTSTRAP_ACTION},
                ))
                ids[p] = ck
            _flush(producer)
        advance(1)
    if spec.global_learner:
        champion = copy.copy(history.model)
        champion.data_drift = None  # the reference is the partitions'
        model: OnlineModel | Candidates = champion
        if history.candidates is not None:
            model = copy.copy(history.candidates)
            model.models = {**model.models, model.champion: champion}
        end = end_offsets(base, spec.training_topic, 1)[0]
        summary = (model.summary() if isinstance(model, Candidates) else
                   {model.name: {"instance": model.name, "examples": model.version,
                                 "metric": model.scorer.primary,
                                 "score": model.scorer.score(),
                                 "rolling": model.scorer.rolling_values()[0],
                                 "metrics": model.scorer.summary()}})
        store.write(build_snapshot(
            model, model_name=GLOBAL_MODEL, snapshot_id=store.next_id(GLOBAL_MODEL),
            parent=None, offsets={spec.training_topic: {0: end}},
            fingerprint=spec.fingerprint(), key=key, chunk_bytes=settings.snapshot_chunk_bytes,
            meta={"champion": model.champion if isinstance(model, Candidates) else model.name,
                  "candidates": summary, "action": BOOTSTRAP_ACTION},
        ))
        _flush(producer)
    return ids


def _flush(producer: Producer) -> None:
    if producer.flush(30):
        raise BootstrapError("the broker did not acknowledge the bootstrap records in 30 s")


def _iso(ms: float) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
