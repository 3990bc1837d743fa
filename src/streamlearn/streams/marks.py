"""Watermark records and label pacing: how the hot path tells the readers of a merged
partition how far each of its sources is (``streams.merge``), and keeps labels read ahead
of their events from piling up."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import TopicPartition as TP

from streamlearn.kafka.records import watermark_record
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams.catch_up import CatchUp
from streamlearn.streams.checkpoint import PartitionState, Position
from streamlearn.streams.join import JoinProcessor
from streamlearn.streams.merge import NEVER

__all__ = ["Marks"]

log = logging.getLogger(__name__)

# Watermark records only let readers of a merged partition go on sooner (their order does
# not depend on them), so a few per second per source are enough.
WATERMARK_INTERVAL_S = 0.1


class Marks:
    """Each source's watermark records, and the pausing of labels read too far ahead."""

    def __init__(self, spec: Pipeline, consumer: Any, catch_up: CatchUp,
                 produce: Callable[..., None], labels_ahead_max: int,
                 clock: Callable[[], float], merged_served: bool) -> None:
        self.spec, self.consumer, self.catch_up = spec, consumer, catch_up
        self.produce, self.clock = produce, clock
        self.labels_ahead_max = labels_ahead_max
        self.merged_served = merged_served
        """Whether label joins read ``.served`` (global learning): only then is it merged."""
        self.sent: dict[Position, tuple[float, bool]] = {}
        self._at = clock()
        self.labels_paused: set[int] = set()

    def due(self, partitions: Mapping[Position, PartitionState],
            joins: Mapping[int, JoinProcessor]) -> None:
        """Every source of a merged partition says how far it is: each predicting partition
        to every ``.served`` partition, each label join to ``.training``. A source read to
        its end and silent for ``idle_after`` says it is idle."""
        now = self.clock()
        if now - self._at < WATERMARK_INTERVAL_S:
            return
        self._at = now
        for position, state in partitions.items():
            if state.replay_until is not None:
                continue  # behind the marks written before the crash
            mark = (state.processor.merge_time, self.input_idle(position, state))
            if mark != self.sent.get(position) and (mark[0] != NEVER or mark[1]):
                self.send(position, state, mark)
        for partition, join in joins.items():
            if join.replay_until is not None:
                continue
            record = join.watermark_due(self.labels_idle(partition))
            if record is not None:
                self.send_join(partition, record)

    def send(self, position: Position, state: PartitionState, mark: tuple[float, bool]
             ) -> None:
        """A source's watermark record to every partition of the topic it writes to that
        several sources write (``.served`` under global learning, a ``by`` stage's topic)."""
        spec = self.spec
        if state.stage.final:
            if not self.merged_served:
                return  # nothing merges .served: no label join reads it
            topic = spec.served_topic
        else:
            topic = spec.stages[state.stage.index + 1].topic
        self.sent[position] = mark
        value = watermark_record(position[1], mark[0], idle=mark[1])
        key = f"watermark/{position[1]}".encode()
        for q in range(spec.partitions):
            self.produce(topic, value, key, partition=q)

    def send_join(self, partition: int, record: bytes) -> None:
        self.produce(self.spec.training_topic, record, f"watermark/{partition}".encode(),
                     partition=0)

    def labels_idle(self, partition: int) -> bool:
        return self.catch_up.idle((self.spec.labels_topic, partition))

    def input_idle(self, position: Position, state: PartitionState) -> bool:
        """Read to its end and silent; a re-keyed input also needs every source idle."""
        if state.merge is not None and (state.merge.waiting or not all(state.merge.idle)):
            return False
        return self.catch_up.idle(position)

    def pace_labels(self, joins: Mapping[int, JoinProcessor]) -> None:
        """Stop reading a partition's labels while too many wait for their events (labels
        read ahead, as in a backlog, would all sit in memory and in the next checkpoint);
        read on once half of them have found theirs. Nothing is skipped: a paused partition
        resumes at the offset after the last label processed."""
        limit = self.labels_ahead_max
        for partition, join in joins.items():
            ahead = join.labels_ahead
            if partition not in self.labels_paused and ahead >= limit:
                self.consumer.pause([TP(self.spec.labels_topic, partition)])
                self.labels_paused.add(partition)
                log.info("partition %d: %d labels wait for their events; reading labels "
                         "again when %d do (STREAMLEARN_LABELS_AHEAD_MAX)", partition, ahead,
                         limit // 2)
            elif partition in self.labels_paused and ahead <= limit // 2:
                self.consumer.resume([TP(self.spec.labels_topic, partition)])
                self.labels_paused.discard(partition)
