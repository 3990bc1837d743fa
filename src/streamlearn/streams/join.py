"""One partition of the label join, between Kafka records and :class:`LabelJoin`.

It reads partition *p* of ``<name>.served`` and of ``<name>.labels`` (co-partitioned: same
count, murmur2 on the event id), joins them in event time, and writes each example to
``<name>.training``, whose single partition is the learner's total order. A label that is
not valid JSON, lacks ``event_id`` or ``label``, or has the wrong type is a dead letter with
its reason. Labels that rode inside their events arrive in the served record and join at
once.

Its state is checkpointed in ``<name>.state`` (partition *p*) with the offsets of both
topics; a restart replays from there, so an example may be written twice: the learner drops
the copy by event id.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from streamlearn.monitoring.metrics import LABEL_OUTCOMES, BoundMetrics, observe_many
from streamlearn.pipeline import Pipeline
from streamlearn.schema import BadEvent
from streamlearn.streams.label_join import LabelJoin
from streamlearn.streams.processor import Emit, SourceMessage, dead_letter
from streamlearn.streams.records import decode_label, encode_example

__all__ = ["JoinProcessor"]

log = logging.getLogger(__name__)


class JoinProcessor:
    """The label join of one partition: served records and labels in, examples out."""

    def __init__(self, spec: Pipeline, partition: int, metrics: BoundMetrics,
                 max_event_bytes: int) -> None:
        self.spec = spec
        self.partition = partition
        self.metrics = metrics
        self.max_event_bytes = max_event_bytes
        self.join = LabelJoin(spec.label_ttl_ms, partition)
        self.label_type = spec.label_type
        self.offsets: dict[str, int] = {}
        """Next offset to read, per topic (served, labels): what the state reflects."""
        self.checkpoint_id = 0
        self.checkpoint_offsets: dict[str, int] = {}
        self.events_since_checkpoint = 0
        self._pending = metrics.family.labels_pending.labels(spec.name, str(partition))
        self._outcomes = {o: metrics.family.labels.labels(spec.name, o) for o in LABEL_OUTCOMES}
        self._delay = metrics.family.label_delay.labels(spec.name)

    def process_batch(self, messages: list[SourceMessage], emit: Emit) -> None:
        delays: list[float] = []
        served_topic, training = self.spec.served_topic, self.spec.training_topic
        for message in messages:
            topic = message.topic() or ""
            if topic == served_topic:
                examples = self._served(message)
            else:
                try:
                    event_id, label, t = decode_label(message.value(), self.max_event_bytes,
                                                      self.label_type)
                except BadEvent as error:
                    dead_letter(self.spec, self.metrics, message, error, emit)
                    examples = []
                else:
                    label_time = message.timestamp()[1] if t is None else t
                    examples = self.join.label(event_id, label, label_time)
            for event_id, record, label, label_time in examples:
                delays.append(max(0.0, (label_time - record["event_time"]) / 1000))
                emit(training, encode_example(record, label, label_time), event_id.encode())
            self.offsets[topic] = (message.offset() or 0) + 1
        self.events_since_checkpoint += len(messages)
        for outcome, count in self.join.take_counts().items():
            if count:
                self._outcomes[outcome].inc(count)
        observe_many(self._delay, delays)
        self._pending.set(self.join.waiting)

    def _served(self, message: SourceMessage) -> list[Any]:
        """A served record (written by a predictor, so well-formed); with its label when
        the label rode in the event."""
        record = orjson.loads(message.value() or b"{}")
        event_id, t = str(record["event_id"]), record["event_time"]
        label = record.pop("label", None)
        examples = self.join.served(event_id, record, t)
        if label is not None:
            examples += self.join.label(event_id, label, t)
        return examples

    @property
    def labels_ahead(self) -> int:
        """Labels waiting for their served record (read ahead of their events)."""
        return len(self.join.early)

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint_due(self, every: int) -> bool:
        return self.offsets != self.checkpoint_offsets and self.events_since_checkpoint >= every

    def checkpoint_records(self) -> tuple[list[tuple[str, bytes | None]], tuple[str, bytes]]:
        """(state records, meta record): the meta commits them, so it goes once they are
        acknowledged."""
        self.checkpoint_id += 1
        *records, meta = self.join.checkpoint_records(self.checkpoint_id, dict(self.offsets))
        self.checkpoint_offsets = dict(self.offsets)
        self.events_since_checkpoint = 0
        assert meta[1] is not None
        return records, (meta[0], meta[1])

    def restore(self, records: list[tuple[str, bytes | None]]) -> list[tuple[str, bytes | None]]:
        """The join as of its last committed checkpoint; returns repair records."""
        meta = self.join.committed(records)
        if meta is None:
            return []
        self.checkpoint_id = meta["ck"]
        self.offsets = dict(meta.get("offsets") or {})
        self.checkpoint_offsets = dict(self.offsets)
        repairs = self.join.restore(records, self.checkpoint_id)
        log.info("partition %d: restored the label join (%d waiting) at offsets %s",
                 self.partition, self.join.waiting, self.offsets)
        return repairs
