"""Restores the hot path's partitions and label joins from their checkpoints.

State is a function of the log: a partition comes back as of its newest valid checkpoint
(its model snapshot, or a forwarding stage's own meta record) and is read again from the
offset that checkpoint reflects, so model, features and position always agree. Records of a
checkpoint cut short are rolled back in ``<name>.state`` (repair records). Under
exactly-once, :func:`replay_to` marks how far outputs were committed already: up to there a
restored partition computes again without writing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING
from confluent_kafka import TopicPartition as TP

from streamlearn.config import Settings
from streamlearn.features.online import PartitionFeatures, meta_key
from streamlearn.features.stages import Stage
from streamlearn.kafka.snapshots import Restored, SnapshotStore, records
from streamlearn.models.drift import DriftOptions
from streamlearn.models.online import OnlineModel, PredictorState
from streamlearn.models.snapshot import Payload, partition_model
from streamlearn.monitoring.metrics import PipelineMetrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams.catch_up import CatchUp
from streamlearn.streams.checkpoint import Checkpoints, PartitionState, Position
from streamlearn.streams.join import JoinProcessor
from streamlearn.streams.merge import SourceMerge
from streamlearn.streams.processor import PartitionProcessor
from streamlearn.streams.processor_options import ProcessorOptions
from streamlearn.streams.serving import ModelFollower

__all__ = ["Restorer", "replay_to"]

log = logging.getLogger(__name__)


class Restorer:
    """Builds each partition's state from ``<name>.state`` and its snapshot."""

    def __init__(self, spec: Pipeline, settings: Settings, metrics: PipelineMetrics,
                 drift: DriftOptions, follower: ModelFollower | None,
                 consumer_config: dict[str, Any], checkpoints: Checkpoints,
                 store: SnapshotStore, rebuild: bool, clock: Callable[[], float]) -> None:
        self.spec, self.settings, self.metrics, self.drift = spec, settings, metrics, drift
        self.follower, self.consumer_config, self.clock = follower, consumer_config, clock
        self.checkpoints, self.store, self.rebuild = checkpoints, store, rebuild
        self._stages = {stage.topic: stage for stage in spec.stages}
        self._join_topics = ((spec.served_topic, spec.labels_topic)
                             if spec.global_learner else ())
        self._state_read: dict[int, list[tuple[str, bytes | None]]] = {}

    def begin(self) -> None:
        """A new assignment: ``<name>.state`` is read again."""
        self._state_read = {}

    def assign(self, partitions: list[TP],
               committed: Mapping[Position, tuple[int, dict[str, Any]]],
               states: dict[Position, PartitionState], joins: dict[int, JoinProcessor],
               catch_up: CatchUp) -> list[Position]:
        """Restore each assigned partition into ``states`` (a label join's into ``joins``),
        set the offset to read it from and, exactly-once, the ``committed`` position it
        replays to without writing; returns the stages' partitions restored."""
        final = self.spec.final_stage
        names = {tp.partition: partition_model(tp.partition) for tp in partitions
                 if tp.topic == final.topic}
        restored = self.store.load(names.values(), ignore_incompatible=self.rebuild)
        assigned = []
        for tp in partitions:
            position = (tp.topic, tp.partition)
            if tp.topic in self._join_topics:
                join = joins.get(tp.partition)
                if join is None:
                    join = joins[tp.partition] = self.join(tp.partition)
                taken = committed.get(position, (0, {}))[1].get("t", 0)
                if taken > join.taken:
                    join.replay_until = max(taken, join.replay_until or 0)
                offset = join.offsets.get(tp.topic)
                tp.offset = OFFSET_BEGINNING if offset is None else offset
                catch_up.start(position, offset)
                continue
            stage = self._stages[tp.topic]
            if stage.final:
                state = self.final(stage, tp.partition, restored.get(names[tp.partition]))
            else:
                state = self.forwarding(stage, tp.partition)
            states[position] = state
            assigned.append(position)
            replay_to(state, committed.get(position))
            tp.offset = OFFSET_BEGINNING if state.snapshot_offset is None else state.snapshot_offset
            catch_up.start(position, state.snapshot_offset)
        return assigned

    def final(self, stage: Stage, partition: int, found: Restored | None) -> PartitionState:
        """The predicting stage: the model from its snapshot, features as of that snapshot."""
        offset = None
        if found is not None:
            offset = found.manifest.get("offsets", {}).get(stage.topic, {}).get(str(partition))
        payload: Payload | None = None
        if found is None or offset is None:
            snapshot_id, offset = None, None
            log.info("partition %d: no snapshot; %s from its earliest retained event", partition,
                     "predicting" if self.follower else "learning")
        else:
            payload, snapshot_id = found.model, found.manifest["snapshot_id"]
            self.metrics.snapshots.restores.inc()
            log.info("partition %d: restored snapshot %d (%d examples); resuming at offset "
                     "%d", partition, snapshot_id, found.manifest.get("examples", 0), offset)
        features = self._features(stage, partition, snapshot_id)
        if self.follower is not None:  # global learning: serve the published model
            model = None
            state = payload if isinstance(payload, PredictorState) else PredictorState()
        else:
            model = payload if isinstance(payload, OnlineModel) else OnlineModel(
                self.spec.model(), adwin_delta=(
                    self.settings.drift_adwin_delta if self.drift.enabled else None),
                scoring=self.spec.scoring)
            if model.rescore(self.spec.scoring):
                log.info("partition %d: metrics %s replace the snapshot's; they start over",
                         partition, ", ".join(self.spec.scoring.names))
            state = None
        processor = PartitionProcessor(self.spec, model, self.metrics, ProcessorOptions(
            self.settings.max_event_bytes, features=features, stage=stage, drift=self.drift,
            serving=self.follower, predictor_state=state))
        processor.stage_partition = partition
        processor.next_offset = offset
        merge = self._merge(stage, processor, features, offset)
        return PartitionState(stage, processor, snapshot_id, offset,
                              model.version if model else 0, self.clock(), merge,
                              merge.released if merge else 0)

    def forwarding(self, stage: Stage, partition: int) -> PartitionState:
        """A stage that forwards: its features and position from its own meta record."""
        features = self._features(stage, partition, None, marker=True)
        assert features is not None
        processor = PartitionProcessor(self.spec, None, self.metrics, ProcessorOptions(
            self.settings.max_event_bytes, features=features, stage=stage))
        processor.next_offset = features.offset
        processor.stage_partition = partition
        merge = self._merge(stage, processor, features, features.offset)
        return PartitionState(stage, processor, features.checkpoint_id, features.offset, 0,
                              self.clock(), merge, merge.released if merge else 0)

    def join(self, partition: int) -> JoinProcessor:
        """The label join of a partition as of its last checkpoint in ``<name>.state``."""
        join = JoinProcessor(self.spec, partition, self.metrics, self.settings.max_event_bytes)
        self._repair(partition, join.restore(self._stored_state(partition)))
        return join

    def _merge(self, stage: Stage, processor: PartitionProcessor,
               features: PartitionFeatures | None, offset: int | None) -> SourceMerge | None:
        """A stage's merge time, and (a re-keyed stage) the merge of its sources, as of the
        checkpoint its features were restored from."""
        extra = features.extra if features is not None else {}
        if extra.get("m") is not None:
            processor.merge_time = extra["m"]
        if stage.index == 0:
            return None
        return SourceMerge.restore(self.spec.partitions, extra.get("merge"), offset)

    def _features(self, stage: Stage, partition: int, snapshot_id: int | None,
                  marker: bool = False) -> PartitionFeatures | None:
        """The stage's feature state from ``<name>.state`` as of its checkpoint.

        ``marker``: the checkpoint is the stage's own meta record (no model snapshot).
        """
        if not stage.features and stage.final:
            return None
        features = stage.features.partition(partition, stage.operator)
        stored = self._stored_state(partition)
        if marker:
            meta = [v for k, v in stored if k == meta_key(partition, stage.operator) and v]
            snapshot_id = orjson.loads(meta[-1])["ck"] if meta else None
        repairs, lost = features.restore(stored, snapshot_id)
        self._repair(partition, repairs)
        if lost:
            self.metrics.snapshots.entities_lost.inc(lost)
            log.error("partition %d: the feature state of %d entities was newer than the "
                      "snapshot restored (a newer one was refused); they start afresh",
                      partition, lost)
        log.info("partition %d: restored the feature state of %d %s entities (%d records "
                 "rolled back to the checkpoint)", partition, len(features.entities),
                 stage.entity_field, len(repairs))
        return features

    def _repair(self, partition: int, repairs: list[tuple[str, bytes | None]]) -> None:
        for key, value in repairs:
            self.checkpoints.produce_state(partition, key, value)
        if repairs:
            self.checkpoints.flush()

    def _stored_state(self, partition: int) -> list[tuple[str, bytes | None]]:
        """``<name>.state`` of a partition, read once per assignment whatever reads it."""
        stored = self._state_read.get(partition)
        if stored is None:
            stored = self._state_read[partition] = [
                (k.decode(), v) for k, v in
                records(self.consumer_config, self.spec.state_topic, [partition]) if k]
        return stored


def replay_to(state: PartitionState, committed: tuple[int, dict[str, Any]] | None) -> None:
    """Exactly-once: outputs of what a restored partition reads again up to its committed
    position (offset, and a merge's position in the offset's metadata) were committed
    before; they are computed, not written."""
    if state.merge is not None and state.processor.features is not None:
        state.read = (state.processor.features.extra.get("merge") or {}).get("read")
    if committed is None:
        return
    offset, meta = committed
    if state.merge is not None:
        if meta.get("r", 0) > state.merge.released:
            state.replay_until = meta["r"]
        state.replay_read = meta.get("o", 0)
        if state.replay_until is not None:
            log.info("%s[%d]: replaying to merge position %d without writing",
                     state.stage.topic, state.processor.stage_partition, meta["r"])
    elif offset > (state.snapshot_offset or 0):
        state.replay_until = offset
        log.info("%s[%d]: replaying offsets %s to %d without writing", state.stage.topic,
                 state.processor.stage_partition, state.snapshot_offset or 0, offset)
