"""The event hot path: a batched confluent-kafka consumer, plain Python per batch.

Each step takes what the consumer has (a short wait for the first event, then whatever else
is already fetched, up to ``batch_size``) and runs each partition's events through that
partition's :class:`PartitionProcessor`, which hands its outputs to the producer. Offsets
are committed (once a second) only after every output before them is acknowledged; under
exactly-once, outputs and offsets commit in one transaction (``streams.transactions``).
librdkafka fetches and produces in its own threads, off the GIL; the benchmark chose it over
aiokafka (docs/performance.md).

State is a function of the log: each partition is checkpointed with the offset it reflects
(``streams.checkpoint``: every ``snapshot_every`` examples or ``snapshot_interval`` seconds,
on revoke and on a clean stop), always *after* the outputs of the events it covers are
acknowledged (or committed). On assignment it is restored from its newest valid checkpoint
(``streams.restore``) and read from that offset, not the group's committed one, so model
and position always agree and a crash replays exactly the events the checkpoint lacks.

Beside it: ``outputs`` (the producers, acks, transactions), ``batches`` (a partition's
batch through its processor, merged or replayed), ``marks`` (watermark records, label
pacing), ``offsets`` (what a commit carries), ``broker_watch`` (librdkafka's callbacks).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as TP

from streamlearn.config import Settings
from streamlearn.kafka.clients import (
    LIBRDKAFKA_LOGGER,
    group_consumer_config,
    kafka_config,
    output_producer_config,
)
from streamlearn.kafka.snapshots import SnapshotStore
from streamlearn.models.candidates import Candidates
from streamlearn.models.drift import DriftOptions
from streamlearn.models.keys import old_model_keys
from streamlearn.monitoring.metrics import PipelineMetrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams.batches import process, process_merged
from streamlearn.streams.broker_watch import BrokerWatch, ClientEvents
from streamlearn.streams.catch_up import CatchUp
from streamlearn.streams.checkpoint import Checkpoints, PartitionState, Position
from streamlearn.streams.join import JoinProcessor
from streamlearn.streams.learner import LearnerRunner
from streamlearn.streams.marks import Marks
from streamlearn.streams.offsets import committed_positions, moved_offsets, transaction_offsets
from streamlearn.streams.outputs import Outputs
from streamlearn.streams.restore import Restorer
from streamlearn.streams.serving import ModelFollower
from streamlearn.streams.transactions import (
    ProducerFenced,
    TransactionAborted,
    transactional_id,
)

__all__ = ["HotPath"]

log = logging.getLogger(__name__)

FIRST_EVENT_WAIT_S = 0.1
# Outputs are not waited for batch by batch: a restart replays from the last snapshot, and a
# snapshot or a commit is only made once every output before it is acknowledged. The group's
# committed offsets only show progress (lag), so once a second is enough.
COMMIT_INTERVAL_S = 1.0




class HotPath:
    """Consume, process, produce, ack, commit; checkpoint models with their offsets."""

    def __init__(
        self,
        spec: Pipeline,
        settings: Settings,
        key: bytes,
        metrics: PipelineMetrics,
        rebuild: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.key = key
        self.metrics = metrics
        self.rebuild = rebuild
        self.clock = clock
        self.fingerprint = spec.fingerprint()
        base = kafka_config(settings, spec.group_id)
        broker = metrics.broker()  # exports broker_up 1 from now on
        self.watch = BrokerWatch(clock, on_change=broker.changed)
        self.client_events = ClientEvents(self.watch, settings, broker, self._owned_inputs)
        watched = {
            **base,
            # An outage is one line when it starts and one when it ends (BrokerWatch).
            "error_cb": self.client_events.error,
            "stats_cb": self.client_events.stats,
            "statistics.interval.ms": 1000,
            "log.connection.close": False,
        }
        self.consumer = Consumer(group_consumer_config(watched, spec.group_id,
                                                       settings.session_timeout))
        self.outputs = Outputs(output_producer_config(watched), self.watch, clock,
                               self._tid("hot-path") if settings.exactly_once else None)
        self.state_producer = self.outputs.state_producer
        self.consumer_config = base
        self.store = SnapshotStore(
            base, self.state_producer, spec.models_topic, key, self.fingerprint,
            settings.snapshots_kept,
            on_refused=metrics.snapshots.refuse,
            old_keys=old_model_keys(settings),
        )
        self.drift = DriftOptions(settings.drift == "on", settings.drift_adwin_delta,
                                  settings.drift_reference_events, settings.drift_psi_threshold,
                                  settings.drift_psi_every)
        self.partitions: dict[Position, PartitionState] = {}
        self.checkpoints = Checkpoints(spec, settings, self.store, metrics, self.state_producer,
                                       self.outputs.flush, self.fingerprint, key, clock)
        self._stages = {stage.topic: stage for stage in spec.stages}
        self._stop = threading.Event()
        self.stepped_at = time.monotonic()
        self._committed_at = clock()
        self._committed: dict[Position, int] = {}
        self._callback_error: Exception | None = None
        # Global learning: the label join per partition, the learner (active or standby) and
        # the newest published model, which every predicting partition serves.
        self.joins: dict[int, JoinProcessor] = {}
        self._join_topics = ((spec.served_topic, spec.labels_topic)
                             if spec.global_learner else ())
        self.catch_up = CatchUp(
            self.consumer, settings.idle_after, clock,
            on_idle=broker.input_idle)
        self.marks = Marks(spec, self.consumer, self.catch_up, self.outputs.produce,
                           settings.labels_ahead_max, clock, spec.global_learner)
        self.follower: ModelFollower | None = None
        self.learner: LearnerRunner | None = None
        if spec.global_learner:
            adwin = settings.drift_adwin_delta if self.drift.enabled else None
            self.follower = ModelFollower(
                base, spec.models_topic, key, self.fingerprint,
                lambda: Candidates(spec.candidates(), adwin_delta=adwin,
                                   scoring=spec.scoring), metrics,
                old_keys=old_model_keys(settings))
            self.learner = LearnerRunner(
                spec, settings, watched, self.store, metrics, self.outputs.flush, key,
                self.fingerprint, self.drift, clock,
                transactions=(lambda: self.outputs.transactions(self._tid("learner")))
                if settings.exactly_once else None)
        self.restorer = Restorer(spec, settings, metrics, self.drift, self.follower, base,
                                 self.checkpoints, self.store, rebuild, clock)

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Run until :meth:`stop`; then checkpoint, commit and leave the group."""
        # Everything alive now (imports, the app) is long-lived: keep the cyclic GC from
        # rescanning it on every full collection, which shows up as latency spikes.
        gc.freeze()
        librdkafka_log = logging.getLogger(LIBRDKAFKA_LOGGER)
        librdkafka_log.addFilter(self.watch)
        if self.follower is not None:
            self.follower.start()
        if self.learner is not None:
            self.learner.start()
        self._subscribe()
        try:
            while not self._stop.is_set():
                self.step()
            if self.outputs.txn is not None:
                if self._commit_transaction():
                    self._checkpoint(list(self.partitions))
                    self._checkpoint_joins(list(self.joins))
                    self._commit_transaction()  # the joins' checkpoint marks
            else:
                self._checkpoint(list(self.partitions))
                self._checkpoint_joins(list(self.joins))
                self._commit(list(self.partitions), asynchronous=False)
            self.partitions.clear()
            self.joins.clear()
        finally:
            self.consumer.close()
            if self.learner is not None:
                self.outputs.flush()
                self.learner.close()
            if self.follower is not None:
                self.follower.stop()
            self.outputs.close(self.settings.session_timeout)
            librdkafka_log.removeFilter(self.watch)

    def stop(self) -> None:
        self._stop.set()

    def _owned_inputs(self) -> set[Position]:
        return {*self.partitions, *((t, p) for p in self.joins for t in self._join_topics)}

    def _subscribe(self) -> None:
        self.consumer.subscribe(
            [*self._stages, *self._join_topics],
            on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost,
        )

    def _consume(self, count: int, timeout: float) -> list[Any]:
        """``consume``, re-raising what a rebalance callback raised inside it.

        librdkafka calls the callbacks from inside ``consume``; when another callback (the
        log, errors, statistics) runs after one that raised, confluent-kafka loses the
        exception ("returned NULL without setting an exception"). So the rebalance callbacks
        keep theirs and it is raised here.
        """
        try:
            messages = self.consumer.consume(count, timeout=timeout)
        except SystemError:
            if self._callback_error is None:
                raise
            messages = []
        if self._callback_error is not None:
            error, self._callback_error = self._callback_error, None
            raise error
        return messages

    def step(self) -> int:
        """One batch; returns the number of events it held."""
        self.stepped_at = time.monotonic()  # (the service reports a stall from it)
        messages = self._consume(1, FIRST_EVENT_WAIT_S)
        if messages and self.settings.batch_size > 1:
            messages += self._consume(self.settings.batch_size - 1, 0)
        by_partition: dict[Position, list[Any]] = {}
        emit = self.outputs.producer.produce
        for message in messages:
            if message.error():
                self.client_events.consume_error(message.error())
                continue
            by_partition.setdefault((message.topic(), message.partition()), []).append(message)
        for position, batch in by_partition.items():
            self.catch_up.read(position, (batch[-1].offset() or 0) + 1)
            if position[0] in self._join_topics:
                join = self.joins.get(position[1])
                if join is not None:
                    join.add(batch)
                continue
            state = self.partitions.get(position)
            if state is None:  # fetched before a revoke; the new owner reads it again
                continue
            if state.merge is not None:
                process_merged(state, state.merge, batch, emit)
                continue
            process(state, batch, emit)
            model = state.processor.model
            if model is not None and model.version and state.processor.learns:
                # no score is exported before there is one
                self.metrics.scores.set(position[1], model.scorer)
        if self.follower is not None:
            self._drain_joins(emit)
        if self.follower is not None or len(self.spec.stages) > 1:
            self.marks.due(self.partitions, self.joins)
        if self.learner is not None:
            self.learner.step(emit)
        self.outputs.poll()
        due = [p for p, s in self.partitions.items() if self.checkpoints.due(s)]
        joins_due = self.checkpoints.joins_due(self.joins)
        publish = self.learner is not None and self.learner.publish_due()
        if self.outputs.txn is not None:
            commit_due = self.clock() - self._committed_at >= self.settings.commit_interval
            # A checkpoint reflects committed offsets only: a restore from it replays up to
            # the committed offsets with outputs suppressed, then writes again. (The learner
            # commits its own transaction when it publishes.)
            ready = bool(due or joins_due or commit_due) and self._commit_transaction()
        else:
            commit_due = self.clock() - self._committed_at >= COMMIT_INTERVAL_S
            ready = bool(due or joins_due or publish or commit_due) and self.outputs.settled()
        if ready and due:
            self._checkpoint(due, wait=False)
        if ready and joins_due:
            self._checkpoint_joins(joins_due)
        if publish and (ready or self.outputs.txn is not None):
            assert self.learner is not None
            self.learner.publish()
        if ready and commit_due and self.outputs.txn is None:
            self._commit(list(self.partitions), asynchronous=True)
        return len(messages)

    def _drain_joins(self, emit: Callable[..., None]) -> None:
        """Join what both inputs allow, in event time; pace the labels read ahead."""
        for partition, join in self.joins.items():
            join.drain(emit, self.marks.labels_idle(partition))
        if self.joins:
            self.marks.pace_labels(self.joins)

    def _commit(self, partitions: list[Position], asynchronous: bool) -> None:
        """Commit the offsets that moved, up to acknowledged outputs (callers flush first)."""
        self._committed_at = self.clock()
        offsets = moved_offsets(partitions, self.partitions, self.joins, self._committed)
        if offsets:
            self.consumer.commit(offsets=offsets, asynchronous=asynchronous)

    # -- exactly-once ----------------------------------------------------------------------

    def _tid(self, role: str) -> str:
        return transactional_id(self.spec.group_id, self.settings.transactional_id, role)

    def _commit_transaction(self) -> bool:
        """Commit the open transaction with the input positions it reflects; False when it
        had to be aborted (state is then rewound to the committed offsets)."""
        assert self.outputs.txn is not None
        self._committed_at = self.clock()
        try:
            self.outputs.txn.commit(transaction_offsets(self.partitions, self.joins),
                                    self.consumer.consumer_group_metadata())
        except TransactionAborted:
            self._rejoin()
            return False
        except ProducerFenced:
            self.outputs.renew()
            self._rejoin()
            return False
        return True

    def _rejoin(self) -> None:
        """After an abort: drop every partition's state and rejoin the group. What it assigns
        is restored from its checkpoint and replayed to the committed offsets, as after a
        restart. Not restored in place: the abort may mean the group gave the partitions to
        another member (this one was paused past its session), whose checkpoint a restore
        here could overwrite with repair records."""
        log.warning("rejoining the group: every partition restarts from its checkpoint and "
                    "replays to its committed offset")
        self._forget(list(self.partitions))
        self._forget_joins(list(self.joins))
        self.marks.labels_paused.clear()  # a new assignment is read unpaused
        self.consumer.unsubscribe()
        self._subscribe()

    # -- checkpoints (streams.checkpoint) ----------------------------------------------------

    def _checkpoint(self, positions: list[Position], wait: bool = True) -> None:
        self.checkpoints.partitions(self.partitions, positions, wait)

    def _checkpoint_joins(self, partitions: list[int]) -> None:
        for partition in self.checkpoints.joins(self.joins, partitions):
            # Examples up to it are never written again: the learner can forget their ids.
            self.marks.send_join(partition, self.joins[partition].checkpoint_mark())

    # -- rebalance callbacks (called inside consume(), on this thread) ---------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TP]) -> None:
        try:
            self._assign(consumer, partitions)
        except Exception as exc:  # raised by _consume, after librdkafka is done with it
            self._callback_error = exc

    def _assign(self, consumer: Consumer, partitions: list[TP]) -> None:
        consumer.assign(self._restore(partitions))

    def _restore(self, partitions: list[TP]) -> list[TP]:
        """State of each partition as of its checkpoint, and where to read it from (and,
        exactly-once, up to where its outputs are suppressed)."""
        self.restorer.begin()
        self.marks.labels_paused.clear()  # a new assignment is read unpaused
        if self.outputs.txn is not None:
            self.outputs.flush()  # a checkpoint still in flight is one the restore must see
        for topic in sorted({tp.topic for tp in partitions}):
            log.info("assigned partitions %s of %s",
                     sorted(tp.partition for tp in partitions if tp.topic == topic), topic)
        committed = (committed_positions(self.consumer, partitions)
                     if self.outputs.txn is not None else {})
        assigned = self.restorer.assign(partitions, committed, self.partitions, self.joins,
                                        self.catch_up)
        for position in assigned:
            state = self.partitions[position]
            # Back, and not idle, before writing anything: a mark the source wrote as idle
            # before it stopped would let readers pass its records to come. (Written once
            # every partition is restored: under exactly-once the first record written
            # starts the transaction's timeout.)
            self.marks.send(position, state, (state.processor.merge_time, False))
        for partition in {tp.partition for tp in partitions if tp.topic in self._join_topics}:
            self.marks.send_join(partition, self.joins[partition].resume_mark())
        return partitions

    def _on_revoke(self, consumer: Consumer, partitions: list[TP]) -> None:
        mine = [(tp.topic, tp.partition) for tp in partitions
                if (tp.topic, tp.partition) in self.partitions]
        joins = sorted({tp.partition for tp in partitions
                        if tp.topic in self._join_topics and tp.partition in self.joins})
        try:
            if (mine or joins) and self.outputs.txn is not None:
                self._revoke_transaction(mine, joins)
            elif mine or joins:
                self._checkpoint(mine)
                self._checkpoint_joins(joins)
                self._commit(mine, asynchronous=False)
        except Exception as exc:  # raised by _consume (see there)
            self._callback_error = exc
        self._forget(mine)
        self._forget_joins(joins)

    def _revoke_transaction(self, mine: list[Position], joins: list[int]) -> None:
        """Exactly-once: commit while the partitions are still ours (the group refuses the
        offsets afterwards), then checkpoint them at the committed offsets."""
        assert self.outputs.txn is not None
        self._committed_at = self.clock()
        try:
            self.outputs.txn.commit(transaction_offsets(self.partitions, self.joins),
                                    self.consumer.consumer_group_metadata())
        except TransactionAborted:
            return  # their new owner restores them; what remains is rewound on assignment
        except ProducerFenced:
            self.outputs.renew()
            return
        self._checkpoint(mine)
        self._checkpoint_joins(joins)

    def _on_lost(self, consumer: Consumer, partitions: list[TP]) -> None:
        # Another member may own them already: no snapshot, no commit.
        log.warning("partitions lost: %s", [(tp.topic, tp.partition) for tp in partitions])
        self._forget([(tp.topic, tp.partition) for tp in partitions])
        self._forget_joins([tp.partition for tp in partitions if tp.topic in self._join_topics])
        if self.outputs.txn is not None:
            try:  # nothing written since the last commit may become visible
                self.outputs.txn.abort()
            except ProducerFenced:
                self.outputs.renew()
            # The transaction covered every partition: what is left (nothing, under the
            # eager assignment librdkafka uses here) starts again from its checkpoint.
            self._forget(list(self.partitions))
            self._forget_joins(list(self.joins))

    def _forget_joins(self, partitions: list[int]) -> None:
        for partition in partitions:
            self.marks.labels_paused.discard(partition)
            join = self.joins.pop(partition, None)
            if join is not None:
                for topic in self._join_topics:
                    self._committed.pop((topic, partition), None)
                    self.catch_up.forget((topic, partition))
                join.forget()

    def _forget(self, partitions: list[Position]) -> None:
        for position in partitions:
            self.partitions.pop(position, None)
            self._committed.pop(position, None)
            self.catch_up.forget(position)
            self.metrics.forget_partition(position[1])
