"""Checkpoints of the hot path's partitions and label joins: state with the offsets it reflects.

A partition's checkpoint is its feature state (changed entities, then a meta record) in
``<name>.state`` and, for the predicting stage, its model snapshot in ``<name>.models``,
which carries the input offset it reflects. Outputs come first: a checkpoint must never
claim an event whose prediction could be lost. Then the feature state records, acknowledged
before the record that makes them count: the partition's model snapshot, or (a forwarding
stage) its meta record. A restore takes each entity as of that record, so records of a
checkpoint cut short are rolled back (``changelog``). A label join's checkpoint is its
state records, then (once acknowledged) its meta record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from streamlearn.config import Settings
from streamlearn.features.stages import Stage
from streamlearn.kafka.snapshots import SnapshotStore
from streamlearn.models.snapshot import build_snapshot, partition_model
from streamlearn.monitoring.metrics import PipelineMetrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams.join import JoinProcessor
from streamlearn.streams.merge import NEVER, SourceMerge
from streamlearn.streams.processor import PartitionProcessor

__all__ = ["Checkpoints", "PartitionState", "Position", "moved"]

log = logging.getLogger(__name__)

Position = tuple[str, int]
"""(topic, partition): an input partition of one of the pipeline's stages."""


@dataclass
class PartitionState:
    """One input partition of a stage, as the hot path runs it."""

    stage: Stage
    processor: PartitionProcessor
    snapshot_id: int | None
    """Checkpoint id: the model snapshot's, or (a forwarding stage) its own."""
    snapshot_offset: int | None
    snapshot_examples: int
    snapshot_time: float
    merge: SourceMerge | None = None
    """A re-keyed stage's input: every partition of the stage before writes to it."""
    snapshot_released: int = 0
    replay_until: int | None = None
    """Exactly-once, after a restore: outputs up to here were committed before (an input
    offset; a re-keyed stage: a merge position), so they are computed again, not written."""
    replay_read: int = 0
    """The same for a re-keyed stage's records that are not forwarded events (an offset)."""
    read: int | None = None
    """A re-keyed stage: the offset after the last record read (for the commit)."""


def moved(state: PartitionState) -> bool:
    """Whether the partition has processed anything since its last checkpoint."""
    if state.processor.next_offset != state.snapshot_offset:
        return True
    return state.merge is not None and state.merge.released != state.snapshot_released


class Checkpoints:
    """Writes checkpoints on ``producer`` (under exactly-once, a producer outside the
    transactions); ``flush`` waits until every output so far is acknowledged."""

    def __init__(self, spec: Pipeline, settings: Settings, store: SnapshotStore,
                 metrics: PipelineMetrics, producer: Any, flush: Callable[[], None],
                 fingerprint: str, key: bytes, clock: Callable[[], float]) -> None:
        self.spec, self.settings, self.store, self.metrics = spec, settings, store, metrics
        self.producer, self.flush, self.clock = producer, flush, clock
        self.fingerprint, self.key = fingerprint, key
        self._joins_at = clock()

    def produce_state(self, partition: int, key: str, value: bytes | None) -> None:
        self.producer.produce(self.spec.state_topic, key=key.encode(), value=value,
                              partition=partition)

    # -- partitions ------------------------------------------------------------------------

    def due(self, state: PartitionState) -> bool:
        processor = state.processor
        if not moved(state):
            return False
        if state.merge is not None and (processor.model is None or not processor.learns):
            learned = state.merge.released - state.snapshot_released
        elif processor.model is None or not processor.learns:  # count events, not examples
            learned = (processor.next_offset or 0) - (state.snapshot_offset or 0)
        else:
            learned = processor.model.version - state.snapshot_examples
        return (learned >= self.settings.snapshot_every
                or self.clock() - state.snapshot_time >= self.settings.snapshot_interval)

    def partitions(self, states: Mapping[Position, PartitionState], positions: list[Position],
                   wait: bool = True) -> None:
        """Checkpoint the partitions that moved (and wait for the acks if ``wait``). Not
        waiting for the last record's acks is safe: until they come, a restart finds the
        previous checkpoint; a failed delivery stops the worker at the next flush."""
        self.flush()
        written = []
        for position in positions:
            state = states[position]
            offset = state.processor.next_offset
            if offset is None or not moved(state):
                continue
            if state.stage.final:
                ck = self.store.next_id(partition_model(position[1]))
            else:
                ck = (state.snapshot_id or 0) + 1
            marker = self._features(position[1], state, ck, offset)
            written.append((position, state, offset, ck, marker))
        if any(state.processor.features is not None for _, state, *_ in written):
            self.flush()
        for position, state, offset, ck, marker in written:
            if marker is not None:
                self.produce_state(position[1], *marker)
            elif state.processor.model is not None:
                self._snapshot(position, state, offset, ck)
            state.snapshot_id, state.snapshot_offset = ck, offset
            state.snapshot_time = self.clock()
            if state.merge is not None:
                state.snapshot_released = state.merge.released
        if written and wait:
            self.flush()

    def _features(self, partition: int, state: PartitionState, ck: int, offset: int
                  ) -> tuple[str, bytes] | None:
        """Write the feature state records of checkpoint ``ck``; return the meta record
        that makes them count when no snapshot will (a forwarding stage)."""
        features = state.processor.features
        if features is None:
            return None
        merge_time = state.processor.merge_time
        features.extra = {"m": merge_time if merge_time != NEVER else None}
        if state.merge is not None:
            features.extra["merge"] = state.merge.state()
        features.sweep()
        self.metrics.partitions.count_features(features, state.stage.entity_field)
        entities, marker = features.checkpoint_records(
            ck, None if state.stage.final else offset)
        for key, value in entities:
            self.produce_state(partition, key, value)
        if state.stage.final:  # the snapshot commits them; its meta record goes now
            self.produce_state(partition, *marker)
            return None
        return marker

    def _snapshot(self, position: Position, state: PartitionState, offset: int,
                  snapshot_id: int) -> None:
        model = state.processor.model
        assert model is not None
        started = time.perf_counter()
        name = partition_model(position[1])
        snapshot = build_snapshot(
            state.processor.checkpoint_payload(), model_name=name, snapshot_id=snapshot_id,
            parent=state.snapshot_id,
            offsets={position[0]: {position[1]: offset}}, fingerprint=self.fingerprint,
            key=self.key, chunk_bytes=self.settings.snapshot_chunk_bytes,
            meta=model.manifest_scores() if state.processor.learns else None,
        )
        size = self.store.write(snapshot)
        self.metrics.snapshots.wrote(time.perf_counter() - started, size)
        state.snapshot_examples = model.version
        log.debug("snapshot %s/%d at offset %d (%d bytes)", name, snapshot_id, offset, size)

    # -- label joins -----------------------------------------------------------------------

    def joins_due(self, joins: Mapping[int, JoinProcessor]) -> list[int]:
        every = self.settings.snapshot_every
        interval_due = self.clock() - self._joins_at >= self.settings.snapshot_interval
        return [p for p, join in joins.items()
                if join.checkpoint_due(1 if interval_due else every)]

    def joins(self, joins: Mapping[int, JoinProcessor], partitions: list[int]) -> list[int]:
        """Checkpoint label joins: examples acknowledged first, then the state records, then
        (once those are acknowledged) each join's meta record, which commits them. Returns
        the partitions checkpointed."""
        self._joins_at = self.clock()
        partitions = [p for p in partitions if p in joins and joins[p].checkpoint_due(0)]
        if not partitions:
            return []
        self.flush()
        metas = []
        for partition in partitions:
            state, meta = joins[partition].checkpoint_records()
            for key, value in state:
                self.produce_state(partition, key, value)
            metas.append((partition, meta))
        self.flush()
        for partition, (key, value) in metas:
            self.produce_state(partition, key, value)
        self.flush()
        return partitions
