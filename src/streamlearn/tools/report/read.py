"""The report of a pipeline's training and drift topics, read from Kafka."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from streamlearn.errors import StreamlearnError
from streamlearn.kafka import snapshots
from streamlearn.streams.merge import in_order
from streamlearn.tools.report.scores import WINDOW, Report

if TYPE_CHECKING:
    from streamlearn.spec.pipeline import Pipeline

__all__ = ["read_report"]

PROGRESS_EVERY = 1000


def _decoded(pairs: Iterable[tuple[bytes | None, bytes | None]],
             progress: Callable[[int], None] | None) -> Iterator[Any]:
    """Each record's JSON (None if it is none), telling ``progress`` how many were read."""
    count = 0
    for _key, value in pairs:
        try:
            record = orjson.loads(value) if value is not None else None
        except orjson.JSONDecodeError:
            record = None
        yield record
        count += 1
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    if progress is not None and count % PROGRESS_EVERY:
        progress(count % PROGRESS_EVERY)


def _event_id(record: dict[str, Any]) -> Any:
    return record.get("event_id")


def read_report(spec: Pipeline, consumer_config: dict[str, Any], window: int = WINDOW,
                progress: Callable[[int], None] | None = None) -> Report:
    """The report of what ``spec``'s topics hold now, read from the beginning to their end
    offsets; ``progress(n)`` is told of every ``n`` records read. Global learning: the
    training examples; per-partition learning: the served records, which carry their label
    (each partition's model is a line of its own)."""

    report = Report(spec.name, window=window, keep_ms=2 * spec.label_ttl_ms,
                    scoring=spec.scoring)
    topic = spec.training_topic if spec.global_learner else spec.served_topic
    decoded = list(_decoded(snapshots.records(consumer_config, topic), progress))
    for record in decoded:
        if not isinstance(record, dict):
            report.add_example(record)  # counted as not an example
    examples: Iterable[dict[str, Any]] = (r for r in decoded if isinstance(r, dict))
    if not spec.global_learner:
        report.per_partition = True
        examples = (_per_partition(r) for r in examples)
    for record in in_order(examples, identity=_event_id):  # in the learner's order
        report.add_example(record)
    if not report.examples:
        unread = f" ({report.skipped:,} records there are not examples)" if report.skipped else ""
        if spec.global_learner:
            raise StreamlearnError(
                f"no training examples on {spec.training_topic} yet{unread}: labels join "
                f"their predictions from {spec.labels_topic}")
        raise StreamlearnError(
            f"no served record with a label on {spec.served_topic} yet{unread}: run the "
            f"pipeline and send it labelled events ({spec.label_field!r})")
    for record in _decoded(snapshots.records(consumer_config, spec.drift_topic), progress):
        report.add_drift(record)
    return report


def _per_partition(served: dict[str, Any]) -> dict[str, Any]:
    """A served record as an example whose one "candidate" is its partition's model."""
    src = served.get("src")
    partition = src[0] if isinstance(src, list) and src else 0
    champion = served.get("champion")
    predictions = served.get("predictions")
    prediction = predictions.get(champion) if isinstance(predictions, dict) else None
    line = f"partition {partition}"
    return {**served, "predictions": {line: prediction}, "champion": line}
