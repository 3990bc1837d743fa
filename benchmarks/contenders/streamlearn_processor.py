"""streamlearn's own per-event logic (``EventProcessor``) fed by a plain aiokafka loop.

Explore contender: the agent body of A with faust's consumer, stream and acking swapped for
``getmany``, so the difference to A is what faust's machinery costs per event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from benchmarks.workloads import WORKLOADS
from streamlearn.models.online import OnlineModel
from streamlearn.monitoring import metrics
from streamlearn.pipeline import load_pipeline
from streamlearn.streams.processor import EventProcessor, SourceMessage

__all__ = ["processor_transform"]


@dataclass(slots=True)
class Message:
    """A consumed record as faust presents it (timestamp in seconds)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None
    headers: Any


def processor_transform(
    workload: str, output: str
) -> Callable[[Sequence[Any]], list[tuple[bytes | None, bytes]]]:
    spec = load_pipeline(WORKLOADS[workload].pipeline_file)
    model = OnlineModel(spec.model())
    bound = metrics.create(CollectorRegistry()).bind(spec.name, model.name, model.metric_name)
    processor = EventProcessor(spec, model, bound)

    def transform(records: Sequence[Any]) -> list[tuple[bytes | None, bytes]]:
        messages: list[SourceMessage] = [
            Message(r.topic, r.partition, r.offset, r.timestamp / 1000, r.key, r.value, r.headers)
            for r in records
        ]
        return [(out.key, out.value) for out in processor.process_batch(messages)]

    return transform
