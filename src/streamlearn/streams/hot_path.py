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
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as TP

from streamlearn.config import Settings
from streamlearn.kafka.clients import LIBRDKAFKA_LOGGER, kafka_config
from streamlearn.kafka.producer import Producer
from streamlearn.kafka.records import watermark_record
from streamlearn.kafka.security import failure_hint
from streamlearn.kafka.snapshots import SnapshotStore
from streamlearn.models.candidates import Candidates
from streamlearn.models.drift import DriftOptions
from streamlearn.models.keys import old_model_keys
from streamlearn.models.snapshot import partition_model
from streamlearn.monitoring.metrics import BoundMetrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams.broker_watch import BrokerWatch
from streamlearn.streams.catch_up import CatchUp
from streamlearn.streams.checkpoint import Checkpoints, PartitionState, Position
from streamlearn.streams.join import JoinProcessor
from streamlearn.streams.learner import LearnerRunner
from streamlearn.streams.merge import NEVER, SourceMerge
from streamlearn.streams.restore import Restorer, replay_to
from streamlearn.streams.serving import ModelFollower
from streamlearn.streams.transactions import (
    COMMITTED_TIMEOUT_S,
    ProducerFenced,
    TransactionAborted,
    Transactions,
    discard,
    transactional_id,
)

__all__ = ["HotPath"]

log = logging.getLogger(__name__)

FIRST_EVENT_WAIT_S = 0.1
FLUSH_WAIT_S = 1.0
# Outputs are not waited for batch by batch: a restart replays from the last snapshot, and a
# snapshot or a commit is only made once every output before it is acknowledged. The group's
# committed offsets only show progress (lag), so once a second is enough.
COMMIT_INTERVAL_S = 1.0
SETTLE_WAIT_S = 2.0
# Watermark records only let readers of a merged partition go on sooner (their order does
# not depend on them), so a few per second per source are enough.
WATERMARK_INTERVAL_S = 0.1
MAX_UNACKED = 50_000


BROKER_LOST = (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE)


def _txn_delivery(error: KafkaError | None, message: Any) -> None:
    if error is not None:
        log.debug("a transactional record failed (%s): its transaction aborts", error)


class HotPath:
    """Consume, process, produce, ack, commit; checkpoint models with their offsets."""

    def __init__(
        self,
        spec: Pipeline,
        settings: Settings,
        key: bytes,
        metrics: BoundMetrics,
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
        self.watch = BrokerWatch(clock, on_change=metrics.broker_changed)
        metrics.family.broker_up.labels(spec.name).set(1)
        watched = {
            **base,
            # An outage is one line when it starts and one when it ends (BrokerWatch).
            "error_cb": self._on_kafka_error,
            "stats_cb": self._stats,
            "statistics.interval.ms": 1000,
            "log.connection.close": False,
        }
        session_ms = int(settings.session_timeout * 1000)
        self.consumer = Consumer({
            **watched,
            "group.id": spec.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": session_ms,
            "heartbeat.interval.ms": max(500, min(3000, session_ms // 3)),
        })
        self._delivery_errors: list[KafkaError] = []
        self.producer_config = {
            **watched,
            # Keys land where Java and kafka-python clients put them (murmur2).
            "partitioner": "murmur2_random",
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 1,
            "delivery.report.only.error": True,
            "on_delivery": self._on_delivery,
        }
        self.txn: Transactions | None = None
        """Exactly-once: the transactional producer of every output (``streams.transactions``);
        checkpoints (``<name>.state``, ``<name>.models``) go on ``state_producer``, outside."""
        if settings.exactly_once:
            self.txn = Transactions(self._txn_config(), self._tid("hot-path"))
            self.producer = self.txn.producer
            self.state_producer = Producer(self.producer_config)
        else:
            self.producer = self.state_producer = Producer(self.producer_config)
        self.consumer_config = base
        self.store = SnapshotStore(
            base, self.state_producer, spec.models_topic, key, self.fingerprint,
            settings.snapshots_kept,
            on_refused=lambda reason: metrics.snapshots_refused[reason].inc(),
            old_keys=old_model_keys(settings),
        )
        self.drift = DriftOptions(settings.drift == "on", settings.drift_adwin_delta,
                                  settings.drift_reference_events, settings.drift_psi_threshold,
                                  settings.drift_psi_every)
        self.partitions: dict[Position, PartitionState] = {}
        self.checkpoints = Checkpoints(spec, settings, self.store, metrics, self.state_producer,
                                       self._flush, self.fingerprint, key, clock)
        self._stages = {stage.topic: stage for stage in spec.stages}
        self._stop = threading.Event()
        self._committed_at = clock()
        self._committed: dict[Position, int] = {}
        self._unsettled_since: float | None = None
        self._callback_error: Exception | None = None
        self._lag_children: dict[tuple[str, int], Any] = {}
        # Global learning: the label join per partition, the learner (active or standby) and
        # the newest published model, which every predicting partition serves.
        self.joins: dict[int, JoinProcessor] = {}
        self._join_topics = ((spec.served_topic, spec.labels_topic)
                             if spec.global_learner else ())
        self._labels_paused: set[int] = set()
        self.catch_up = CatchUp(
            self.consumer, settings.idle_after, clock,
            on_idle=lambda topic: metrics.family.inputs_idle.labels(spec.name, topic).inc())
        self._marks_sent: dict[Position, tuple[float, bool]] = {}
        self._marks_at = clock()
        self.follower: ModelFollower | None = None
        self.learner: LearnerRunner | None = None
        if spec.global_learner:
            adwin = settings.drift_adwin_delta if self.drift.enabled else None
            self.follower = ModelFollower(
                base, spec.models_topic, key, self.fingerprint,
                lambda: Candidates(spec.candidates(), adwin_delta=adwin), metrics,
                old_keys=old_model_keys(settings))
            self.learner = LearnerRunner(
                spec, settings, watched, self.store, metrics, self._flush, key,
                self.fingerprint, self.drift, clock,
                transactions=(lambda: Transactions(self._txn_config(), self._tid("learner")))
                if self.txn is not None else None)
        self.restorer = Restorer(spec, settings, metrics, self.drift, self.follower, base,
                                 self.checkpoints, clock)

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
            if self.txn is not None:
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
                self._flush()
                self.learner.close()
            if self.follower is not None:
                self.follower.stop()
            self.producer.flush(self.settings.session_timeout)
            if self.txn is not None:
                self.txn.close()
                self.state_producer.flush(self.settings.session_timeout)
            librdkafka_log.removeFilter(self.watch)

    def stop(self) -> None:
        self._stop.set()

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
        messages = self._consume(1, FIRST_EVENT_WAIT_S)
        if messages and self.settings.batch_size > 1:
            messages += self._consume(self.settings.batch_size - 1, 0)
        by_partition: dict[Position, list[Any]] = {}
        for message in messages:
            if message.error():
                self._consume_error(message.error())
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
                self._merged_batch(state, state.merge, batch)
                continue
            if state.replay_until is not None:
                batch = self._replay(state, batch)
            state.processor.process_batch(batch, self.producer.produce)
            model = state.processor.model
            if model is not None and model.version and state.processor.learns:
                # no score is exported before there is one
                self.metrics.set_scores(position[1], model.score.get(),
                                        model.rolling_score.get())
        if self.follower is not None:
            self._drain_joins()
        if self.follower is not None or len(self.spec.stages) > 1:
            self._watermarks()
        if self.learner is not None:
            self.learner.step(self.producer.produce)
        self.producer.poll(0)  # serves delivery reports (failures only)
        if self.state_producer is not self.producer:
            self.state_producer.poll(0)
        if self._delivery_errors or len(self.producer) > MAX_UNACKED:
            self._flush()
        due = [p for p, s in self.partitions.items() if self.checkpoints.due(s)]
        joins_due = self.checkpoints.joins_due(self.joins)
        publish = self.learner is not None and self.learner.publish_due()
        if self.txn is not None:
            commit_due = self.clock() - self._committed_at >= self.settings.commit_interval
            # A checkpoint reflects committed offsets only: a restore from it replays up to
            # the committed offsets with outputs suppressed, then writes again. (The learner
            # commits its own transaction when it publishes.)
            ready = bool(due or joins_due or commit_due) and self._commit_transaction()
        else:
            commit_due = self.clock() - self._committed_at >= COMMIT_INTERVAL_S
            ready = bool(due or joins_due or publish or commit_due) and self._outputs_settled()
        if ready and due:
            self._checkpoint(due, wait=False)
        if ready and joins_due:
            self._checkpoint_joins(joins_due)
        if publish and (ready or self.txn is not None):
            assert self.learner is not None
            self.learner.publish()
        if ready and commit_due and self.txn is None:
            self._commit(list(self.partitions), asynchronous=True)
        return len(messages)

    def _pace_labels(self) -> None:
        """Stop reading a partition's labels while too many wait for their events (labels
        read ahead, as in a backlog, would all sit in memory and in the next checkpoint);
        read on once half of them have found theirs. Nothing is skipped: a paused partition
        resumes at the offset after the last label processed."""
        limit = self.settings.labels_ahead_max
        for partition, join in self.joins.items():
            ahead = join.labels_ahead
            if partition not in self._labels_paused and ahead >= limit:
                self.consumer.pause([TP(self.spec.labels_topic, partition)])
                self._labels_paused.add(partition)
                log.info("partition %d: %d labels wait for their events; reading labels "
                         "again when %d do (STREAMLEARN_LABELS_AHEAD_MAX)", partition, ahead,
                         limit // 2)
            elif partition in self._labels_paused and ahead <= limit // 2:
                self.consumer.resume([TP(self.spec.labels_topic, partition)])
                self._labels_paused.discard(partition)

    def _merged_batch(self, state: PartitionState, merge: SourceMerge, batch: list[Any]) -> None:
        """A re-keyed stage's records, processed in the order of their sources' merge times
        (``streams.merge``): what it computes does not depend on which source was read
        first. Positions (for entities' replay checks) count the records released."""
        emit = self.producer.produce
        for message in batch:
            record = orjson.loads(message.value() or b"{}")
            offset = message.offset() or 0
            state.read = offset + 1
            if merge.mark(record, offset):
                continue
            if "src" in record and "m" in record:
                # From the first stage, a record's seq is its event's offset: a replayed
                # copy has the same. A later stage's is a merge position (not deduplicated).
                seq = record["src"][1] if state.stage.index == 1 else None
                merge.add(record["src"][0], seq, record["m"], offset, message)
            else:
                merge.skip(offset)  # not a forwarded event: the processor dead-letters it
                replayed = offset < state.replay_read
                state.processor.process_batch([message], discard if replayed else emit,
                                              first_position=merge.released)
        released = merge.release()
        first = merge.released - len(released)
        if state.replay_until is not None and released:
            # Positions below replay_until were written before the crash.
            cut = max(0, min(len(released), state.replay_until - first))
            state.processor.process_batch(released[:cut], discard, first_position=first)
            released, first = released[cut:], first + cut
            if merge.released >= state.replay_until:
                self._replayed(state)
        if released:
            state.processor.process_batch(released, emit, first_position=first)
        state.processor.next_offset = merge.restart_offset()

    def _replay(self, state: PartitionState, batch: list[Any]) -> list[Any]:
        """Exactly-once, after a restore: process the events whose outputs were committed
        before (below ``replay_until``) with writes suppressed; return the rest."""
        assert state.replay_until is not None
        cut = 0
        while cut < len(batch) and (batch[cut].offset() or 0) < state.replay_until:
            cut += 1
        if cut:
            state.processor.process_batch(batch[:cut], discard)
        if cut < len(batch) or state.processor.next_offset == state.replay_until:
            self._replayed(state)
        return batch[cut:]

    def _replayed(self, state: PartitionState) -> None:
        position = (state.stage.topic, state.processor.stage_partition)
        log.info("%s[%d]: replayed to the committed position %s; writing again",
                 position[0], position[1], state.replay_until)
        state.replay_until = None

    def _drain_joins(self) -> None:
        """Join what both inputs allow, in event time; pace the labels read ahead."""
        for partition, join in self.joins.items():
            join.drain(self.producer.produce, self._labels_idle(partition))
        if self.joins:
            self._pace_labels()

    def _labels_idle(self, partition: int) -> bool:
        return self.catch_up.idle((self.spec.labels_topic, partition))

    def _watermarks(self) -> None:
        """Every source of a merged partition says how far it is: each predicting partition
        to every ``.served`` partition, each label join to ``.training`` (``streams.merge``).
        A source read to its end and silent for ``idle_after`` says it is idle."""
        now = self.clock()
        if now - self._marks_at < WATERMARK_INTERVAL_S:
            return
        self._marks_at = now
        for position, state in self.partitions.items():
            if state.replay_until is not None:
                continue  # behind the marks written before the crash
            mark = (state.processor.merge_time, self._input_idle(position, state))
            if mark != self._marks_sent.get(position) and (mark[0] != NEVER or mark[1]):
                self._send_mark(position, state, mark)
        for partition, join in self.joins.items():
            if join.replay_until is not None:
                continue
            record = join.watermark_due(self._labels_idle(partition))
            if record is not None:
                self._send_join_mark(partition, record)

    def _send_mark(self, position: Position, state: PartitionState,
                   mark: tuple[float, bool]) -> None:
        """A source's watermark record to every partition of the topic it writes to that
        several sources write (``.served`` under global learning, a ``by`` stage's topic)."""
        spec = self.spec
        if state.stage.final:
            if self.follower is None:
                return  # nothing merges .served: no label join reads it
            topic = spec.served_topic
        else:
            topic = spec.stages[state.stage.index + 1].topic
        self._marks_sent[position] = mark
        value = watermark_record(position[1], mark[0], idle=mark[1])
        key = f"watermark/{position[1]}".encode()
        for q in range(spec.partitions):
            self.producer.produce(topic, value, key, partition=q)

    def _send_join_mark(self, partition: int, record: bytes) -> None:
        self.producer.produce(self.spec.training_topic, record,
                              f"watermark/{partition}".encode(), partition=0)

    def _input_idle(self, position: Position, state: PartitionState) -> bool:
        """Read to its end and silent; a re-keyed input also needs every source idle."""
        if state.merge is not None and (state.merge.waiting or
                                        not all(state.merge.idle)):
            return False
        return self.catch_up.idle(position)

    def _outputs_settled(self) -> bool:
        """True once every output so far is acknowledged; waits only if that is overdue.

        A snapshot or a commit needs every output before it acknowledged. Waiting for that
        (a flush) holds up every event behind it, so the loop takes the first moment when
        nothing is in flight, and flushes only after ``SETTLE_WAIT_S`` without one.
        """
        now = self.clock()
        if len(self.producer) == 0:
            self._unsettled_since = None
            return True
        if self._unsettled_since is None:
            self._unsettled_since = now
        if now - self._unsettled_since < SETTLE_WAIT_S:
            return False
        self._flush()
        self._unsettled_since = None
        return True

    def _stats(self, raw: str) -> None:
        """librdkafka's statistics (each second): broker health, and consumer lag."""
        self.watch.stats(raw)
        try:
            topics = orjson.loads(raw).get("topics", {})
        except orjson.JSONDecodeError:
            return
        for topic, info in topics.items():
            for partition, stats in info.get("partitions", {}).items():
                lag = stats.get("consumer_lag", -1)
                if lag >= 0 and (topic, int(partition)) in self._owned():
                    self._lag(topic, int(partition)).set(lag)

    def _owned(self) -> set[Position]:
        return {*self.partitions, *((t, p) for p in self.joins for t in self._join_topics)}

    def _lag(self, topic: str, partition: int) -> Any:
        child = self._lag_children.get((topic, partition))
        if child is None:
            child = self._lag_children[(topic, partition)] = (
                self.metrics.family.consumer_lag.labels(self.spec.name, topic, str(partition)))
        return child

    def _consume_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        self._on_kafka_error(error)

    def _on_kafka_error(self, error: KafkaError) -> None:
        """librdkafka's errors: losing the broker is an outage (waited out), not an error."""
        if error.code() in BROKER_LOST:
            self.watch.lost(error.str())
        elif not self.watch.quiet:
            # A refused login or certificate says which setting to fix.
            log.warning("kafka: %s", failure_hint(self.settings, error.str()) or error)

    def _on_delivery(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self._delivery_errors.append(error)

    def _flush(self) -> None:
        """Wait until every produced record is acknowledged; a failed delivery is fatal."""
        producers = {id(p): p for p in (self.producer, self.state_producer)}.values()
        while sum(p.flush(FLUSH_WAIT_S) for p in producers):
            if not self.watch.quiet:
                log.warning("waiting for the broker to acknowledge outputs")
        if self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors, []
            raise KafkaException(errors[0])

    def _commit(self, partitions: list[Position], asynchronous: bool) -> None:
        """Commit the offsets that moved, up to acknowledged outputs (callers flush first)."""
        self._committed_at = self.clock()
        offsets = []
        for position in partitions:
            state = self.partitions.get(position)
            offset = state.processor.next_offset if state else None
            if offset is not None and offset != self._committed.get(position):
                offsets.append(TP(position[0], position[1], offset))
                self._committed[position] = offset
        for partition, join in self.joins.items():
            for topic, offset in join.checkpoint_offsets.items():
                if offset != self._committed.get((topic, partition)):
                    offsets.append(TP(topic, partition, offset))
                    self._committed[(topic, partition)] = offset
        if offsets:
            self.consumer.commit(offsets=offsets, asynchronous=asynchronous)

    # -- exactly-once ----------------------------------------------------------------------

    def _tid(self, role: str) -> str:
        return transactional_id(self.spec.group_id, self.settings.transactional_id, role)

    def _commit_transaction(self) -> bool:
        """Commit the open transaction with the input positions it reflects; False when it
        had to be aborted (state is then rewound to the committed offsets)."""
        assert self.txn is not None
        self._committed_at = self.clock()
        try:
            self.txn.commit(self._transaction_offsets(), self.consumer.consumer_group_metadata())
        except TransactionAborted:
            self._rejoin()
            return False
        except ProducerFenced:
            self._new_transactions()
            self._rejoin()
            return False
        return True

    def _transaction_offsets(self) -> list[TP]:
        """Each input's next offset; where several sources merge, also the merge position
        reached (offset metadata), which a restore replays to with outputs suppressed."""
        offsets = []
        for (topic, partition), state in self.partitions.items():
            offset = state.processor.next_offset
            if offset is None or state.replay_until is not None:
                continue  # behind what is committed: nothing new to commit
            meta = ""
            if state.merge is not None:
                read = state.read if state.read is not None else max(state.replay_read, offset)
                meta = orjson.dumps({"r": state.merge.released, "o": read}).decode()
            offsets.append(TP(topic, partition, offset, metadata=meta))
        for partition, join in self.joins.items():
            if join.replay_until is not None:
                continue
            meta = orjson.dumps({"t": join.taken}).decode()
            for topic, offset in join.offsets.items():
                offsets.append(TP(topic, partition, offset, metadata=meta))
        return offsets

    def _committed_positions(self, partitions: list[TP]) -> dict[Position, tuple[int, dict]]:
        """The group's committed offsets (and their metadata) of ``partitions``: the point
        a restore replays to without writing (exactly-once only)."""
        if self.txn is None or not partitions:
            return {}
        out = {}
        asked = [TP(tp.topic, tp.partition) for tp in partitions]
        for tp in self.consumer.committed(asked, timeout=COMMITTED_TIMEOUT_S):
            if tp.offset >= 0:
                meta = orjson.loads(tp.metadata) if tp.metadata else {}
                out[(tp.topic, tp.partition)] = (tp.offset, meta)
        return out

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
        self._labels_paused.clear()  # a new assignment is read unpaused
        self.consumer.unsubscribe()
        self._subscribe()

    def _new_transactions(self) -> None:
        """A fenced or failed transactional producer gives way to a new one."""
        assert self.txn is not None
        self.txn.close()
        self.txn = Transactions(self._txn_config(), self._tid("hot-path"))
        self.producer = self.txn.producer

    def _txn_config(self) -> dict[str, Any]:
        # A record of a transaction that fails is reported by the commit, which aborts it
        # (and an abort purges what is queued): a delivery error is not the worker's end.
        return {**self.producer_config, "on_delivery": _txn_delivery}

    # -- checkpoints (streams.checkpoint) ----------------------------------------------------

    def _checkpoint(self, positions: list[Position], wait: bool = True) -> None:
        self.checkpoints.partitions(self.partitions, positions, wait)

    def _checkpoint_joins(self, partitions: list[int]) -> None:
        for partition in self.checkpoints.joins(self.joins, partitions):
            # Examples up to it are never written again: the learner can forget their ids.
            self._send_join_mark(partition, self.joins[partition].checkpoint_mark())

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
        self._labels_paused.clear()  # a new assignment is read unpaused
        if self.state_producer is not self.producer:
            self._flush()  # a checkpoint still in flight is one the restore must see
        for topic in sorted({tp.topic for tp in partitions}):
            log.info("assigned partitions %s of %s",
                     sorted(tp.partition for tp in partitions if tp.topic == topic), topic)
        final = self.spec.final_stage
        names = {tp.partition: partition_model(tp.partition) for tp in partitions
                 if tp.topic == final.topic}
        restored = self.store.load(names.values(), ignore_incompatible=self.rebuild)
        committed = self._committed_positions(partitions)
        assigned = []
        for tp in partitions:
            if tp.topic in self._join_topics:
                join = self.joins.get(tp.partition)
                if join is None:
                    join = self.joins[tp.partition] = self.restorer.join(tp.partition)
                taken = committed.get((tp.topic, tp.partition), (0, {}))[1].get("t", 0)
                if taken > join.taken:
                    join.replay_until = max(taken, join.replay_until or 0)
                offset = join.offsets.get(tp.topic)
                tp.offset = OFFSET_BEGINNING if offset is None else offset
                self.catch_up.start((tp.topic, tp.partition), offset)
                continue
            stage = self._stages[tp.topic]
            if stage.final:
                state = self.restorer.final(stage, tp.partition,
                                            restored.get(names[tp.partition]))
            else:
                state = self.restorer.forwarding(stage, tp.partition)
            self.partitions[(tp.topic, tp.partition)] = state
            assigned.append((tp.topic, tp.partition))
            replay_to(state, committed.get((tp.topic, tp.partition)))
            tp.offset = OFFSET_BEGINNING if state.snapshot_offset is None else state.snapshot_offset
            self.catch_up.start((tp.topic, tp.partition), state.snapshot_offset)
        for position in assigned:
            state = self.partitions[position]
            # Back, and not idle, before writing anything: a mark the source wrote as idle
            # before it stopped would let readers pass its records to come. (Written once
            # every partition is restored: under exactly-once the first record written
            # starts the transaction's timeout.)
            self._send_mark(position, state, (state.processor.merge_time, False))
        for partition in {tp.partition for tp in partitions if tp.topic in self._join_topics}:
            self._send_join_mark(partition, self.joins[partition].resume_mark())
        return partitions

    def _on_revoke(self, consumer: Consumer, partitions: list[TP]) -> None:
        mine = [(tp.topic, tp.partition) for tp in partitions
                if (tp.topic, tp.partition) in self.partitions]
        joins = sorted({tp.partition for tp in partitions
                        if tp.topic in self._join_topics and tp.partition in self.joins})
        try:
            if (mine or joins) and self.txn is not None:
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
        assert self.txn is not None
        self._committed_at = self.clock()
        try:
            self.txn.commit(self._transaction_offsets(),
                            self.consumer.consumer_group_metadata())
        except TransactionAborted:
            return  # their new owner restores them; what remains is rewound on assignment
        except ProducerFenced:
            self._new_transactions()
            return
        self._checkpoint(mine)
        self._checkpoint_joins(joins)

    def _on_lost(self, consumer: Consumer, partitions: list[TP]) -> None:
        # Another member may own them already: no snapshot, no commit.
        log.warning("partitions lost: %s", [(tp.topic, tp.partition) for tp in partitions])
        self._forget([(tp.topic, tp.partition) for tp in partitions])
        self._forget_joins([tp.partition for tp in partitions if tp.topic in self._join_topics])
        if self.txn is not None:
            try:  # nothing written since the last commit may become visible
                self.txn.abort()
            except ProducerFenced:
                self._new_transactions()
            # The transaction covered every partition: what is left (nothing, under the
            # eager assignment librdkafka uses here) starts again from its checkpoint.
            self._forget(list(self.partitions))
            self._forget_joins(list(self.joins))

    def _forget_joins(self, partitions: list[int]) -> None:
        for partition in partitions:
            self._labels_paused.discard(partition)
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
