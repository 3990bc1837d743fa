"""The one learner of a pipeline under global learning, and its standbys.

Every worker runs a :class:`LearnerRunner`: a consumer of ``<name>.training`` (one
partition) in a group of its own, ``<group>-learner``. The member that owns the partition is
the active learner (``streams.active_learner``); the others are standbys with nothing
assigned. On assignment the new learner claims the next generation (a record that makes
every reader ignore older generations' snapshots written after it, so a replaced learner
that does not know it yet cannot publish over its successor), restores the newest valid
snapshot and resumes at its offset of the training topic. It publishes a snapshot every
``STREAMLEARN_PUBLISH_INTERVAL`` seconds (plus a progress record each second, for the
predictors' staleness gauge). On revoke and on a clean stop it publishes and commits.

Exactly-once: drift events commit with the training offset in one transaction of the
learner's own producer (its group is not the hot path's). Each commit's offset metadata
carries what the offset cannot say: the merge position ``r``, the newest command applied
``c`` and the example position ``cp`` it took effect at. A learner that takes over replays
from its snapshot to ``r`` without writing, and applies command ``c`` again at ``cp`` when
its snapshot is older than it. An aborted commit stands the learner by and rejoins.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer
from confluent_kafka import TopicPartition as TP

from streamlearn.config import Settings
from streamlearn.kafka.snapshots import SnapshotStore
from streamlearn.models.drift import DriftOptions
from streamlearn.models.snapshot import GLOBAL_MODEL
from streamlearn.monitoring.metrics import PipelineMetrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams.active_learner import ActiveLearner, LearnerParts
from streamlearn.streams.commands import CommandLog
from streamlearn.streams.concept_events import ConceptEvents
from streamlearn.streams.transactions import (
    COMMITTED_TIMEOUT_S,
    ProducerFenced,
    TransactionAborted,
    Transactions,
)

__all__ = ["LearnerRunner"]

log = logging.getLogger(__name__)


class LearnerRunner:
    """Active learner or standby, depending on what the group assigns."""

    def __init__(self, spec: Pipeline, settings: Settings, consumer_config: dict[str, Any],
                 store: SnapshotStore, metrics: PipelineMetrics, flush: Callable[[], None],
                 key: bytes, fingerprint: str, drift: DriftOptions,
                 clock: Callable[[], float] = time.monotonic,
                 transactions: Callable[[], Transactions] | None = None) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.topic = spec.training_topic
        self.consumer = Consumer({
            **consumer_config,
            "group.id": f"{spec.group_id}-learner",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(settings.session_timeout * 1000),
        })
        learner_metrics = metrics.learner(self.topic)
        """The learner's own views (``metrics``: the pipeline's, shared with partitions)."""
        learner_metrics.active.set(0)
        self.metrics = learner_metrics
        self.parts = LearnerParts(
            spec, settings, store, metrics, learner_metrics, flush, key, fingerprint, drift,
            clock, CommandLog(consumer_config, f"{spec.group_id}-commands",
                              spec.commands_topic, (key, *store.old_keys), learner_metrics),
            ConceptEvents(spec.drift_topic, metrics.drift, learner_metrics),
            exactly_once=transactions is not None)
        self.active: ActiveLearner | None = None
        """The active learner; None on a standby."""
        self._callback_error: Exception | None = None
        self._transactions = transactions
        self.txn = transactions() if transactions is not None else None
        """Exactly-once: drift events commit with the training offset in one transaction."""
        self._committed_at = clock()
        self._rebalancing = False

    def start(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)

    def close(self) -> None:
        """A clean stop: publish, commit, leave the group (a standby takes over)."""
        try:
            if self.active is not None:
                self.active.publish()
                self._commit()
        finally:
            self.consumer.close()
            self.parts.commands.close()
            if self.txn is not None:
                self.txn.close()
            self.metrics.active.set(0)

    def step(self, produce: Callable[..., None]) -> int:
        """Learn what has arrived (never waits); returns the examples read."""
        messages = self.consumer.consume(self.settings.batch_size, timeout=0)
        if self._callback_error is not None:
            error, self._callback_error = self._callback_error, None
            raise error
        if self.active is None:
            return 0
        progress = produce
        if self.txn is not None:  # outputs in the transaction; progress records are gauges
            produce, progress = self.txn.producer.produce, self.store.producer.produce
        self.active.learn(messages, produce, progress)
        if (self.txn is not None and self.active is not None
                and self.clock() - self._committed_at >= self.settings.commit_interval):
            self._commit_transaction()
        return len(messages)

    def publish_due(self) -> bool:
        return self.active is not None and self.active.publish_due()

    def publish(self) -> bool:
        return self.active is not None and self.active.publish()

    # -- commits -----------------------------------------------------------------------------

    def _commit(self) -> None:
        """At least once: the offset of the newest published snapshot."""
        active = self.active
        if self.txn is None and active is not None and active.published_offset is not None:
            self.consumer.commit(offsets=[TP(self.topic, 0, active.published_offset)],
                                 asynchronous=False)

    def _commit_transaction(self) -> bool:
        """Commit the drift events written since the last commit with the training offset
        and merge position they reflect; False if it was aborted (then rewound)."""
        assert self.txn is not None
        self._committed_at = self.clock()
        active = self.active
        if active is None or active.replay_until is not None:
            return True  # nothing new: what a replay computes was committed before
        offsets = []
        offset = active.merge.restart_offset()
        if offset is not None:
            commands = self.parts.commands
            meta = orjson.dumps({"r": active.merge.released, "c": commands.seq,
                                 "cp": commands.at}).decode()
            offsets.append(TP(self.topic, 0, offset, metadata=meta))
        try:
            self.txn.commit(offsets, self.consumer.consumer_group_metadata())
        except TransactionAborted:
            self._rejoin()
            return False
        except ProducerFenced:
            self._new_producer()
            self._rejoin()
            return False
        return True

    def _new_producer(self) -> None:
        assert self.txn is not None and self._transactions is not None
        self.txn.close()
        self.txn = self._transactions()

    def _rejoin(self) -> None:
        """After an abort: stand by and rejoin the learner's group. If it assigns the
        training partition here again, the learner restarts from the newest snapshot and
        replays to the committed position; if another member has it (this one was paused
        past its session), that one stays the learner and no generation is claimed here."""
        log.warning("learner: transaction aborted; standing by and rejoining the group")
        self._deactivate()
        if not self._rebalancing:  # (inside a rebalance the group is re-forming anyway)
            self.consumer.unsubscribe()
            self.start()

    def _committed(self) -> dict[str, int]:
        """What the group's committed offset reflects (exactly-once only): its merge
        position ``r``, the newest command ``c`` applied and that command's position
        ``cp``; empty when nothing was committed."""
        if self.txn is None:
            return {}
        [tp] = self.consumer.committed([TP(self.topic, 0)], timeout=COMMITTED_TIMEOUT_S)
        return orjson.loads(tp.metadata) if tp.offset >= 0 and tp.metadata else {}

    # -- rebalance (inside consume, on the hot path's thread) -------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TP]) -> None:
        try:
            self.consumer.assign(self._activate(partitions))
        except Exception as exc:  # raised by step, after librdkafka is done with it
            self._callback_error = exc

    def _activate(self, partitions: list[TP]) -> list[TP]:
        if not partitions:
            return partitions
        parts = self.parts
        parts.flush()  # a snapshot still in flight is one the restore must see
        found = self.store.load([GLOBAL_MODEL]).get(GLOBAL_MODEL)
        generation = self.store.claims.get(GLOBAL_MODEL, 0) + 1
        parts.events.generation = generation
        self.store.claim(GLOBAL_MODEL, generation)
        parts.flush()  # the claim is on the log before any snapshot of this generation
        self.active = ActiveLearner(parts, found, generation, self._committed(),
                                    self._commit_transaction)
        self.metrics.active.set(1)
        self.metrics.generation.set(generation)
        offset = self.active.start_offset
        for tp in partitions:
            tp.offset = OFFSET_BEGINNING if offset is None else offset
        return partitions

    def _on_revoke(self, consumer: Consumer, partitions: list[TP]) -> None:
        if self.active is not None and partitions:
            self._rebalancing = True
            try:
                self.parts.flush()
                if self.active.publish():
                    self.parts.flush()
                    self._commit()
            except Exception as exc:
                self._callback_error = exc
            finally:
                self._rebalancing = False
        self._deactivate()

    def _on_lost(self, consumer: Consumer, partitions: list[TP]) -> None:
        log.warning("learner: the training partition was lost; another learner may be active")
        if self.txn is not None:
            try:  # none of its drift events since the last commit may become visible
                self.txn.abort()
            except ProducerFenced:
                self._new_producer()
        self._deactivate()

    def _deactivate(self) -> None:
        if self.active is not None:
            log.info("learner generation %d: standing by", self.active.generation)
            self.parts.commands.deactivate()
            self.active.stopped = True
        self.active = None
        self.metrics.active.set(0)
