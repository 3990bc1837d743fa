"""The one learner of a pipeline under global learning, and its standbys.

Every worker runs a :class:`LearnerRunner`: a consumer of ``<name>.training`` (one
partition) in a group of its own, ``<group>-learner``. The member that owns the partition is
the active learner; the others are standbys with nothing assigned. On assignment the new
learner reads the newest valid snapshot of the global candidate set (with its seen-set),
claims the next generation (a record that makes every reader ignore older generations'
snapshots written after it, so a replaced learner that does not know it yet cannot publish
over its successor) and resumes at the snapshot's offset of the training topic. It learns each
example in the topic's order (``models.learner``), writes drift events, and publishes a
snapshot every ``STREAMLEARN_PUBLISH_INTERVAL`` seconds (plus a progress record each second,
for the predictors' staleness gauge). On revoke and on a clean stop it publishes and commits.

Registry (:mod:`streamlearn.models.registry`): each snapshot's manifest carries the candidates'
scores and the action that made it; a drift policy's action is published at once, as a
version of its own; signed commands on ``<name>.commands`` (read from the start by the
active learner, each applied once) promote a stored version or roll back.

Exactly-once: a policy action or a command is part of the learner's state, so its position
is in the log. A policy action is a function of the examples, and a replay after a crash
makes it again at the same example. A command comes from outside; each commit's metadata
names the newest command applied and the example position it took effect at, so a learner
that takes over from a snapshot older than that command applies it again at that position,
without writing its drift event a second time.
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
from streamlearn.models.candidates import Action
from streamlearn.models.drift import DriftOptions
from streamlearn.models.learner import Learner
from streamlearn.models.registry import (
    CommandRefused,
    rollback_target,
)
from streamlearn.models.snapshot import GLOBAL_MODEL, SnapshotRefused, build_snapshot, progress_key
from streamlearn.monitoring.metrics import PipelineMetrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams import failpoints
from streamlearn.streams.commands import CommandLog
from streamlearn.streams.concept_events import ConceptEvents
from streamlearn.streams.learner_state import candidate_set, load_seen
from streamlearn.streams.merge import SourceMerge
from streamlearn.streams.transactions import (
    COMMITTED_TIMEOUT_S,
    ProducerFenced,
    TransactionAborted,
    Transactions,
    discard,
)

__all__ = ["LearnerRunner"]

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.0
PUBLISH_COST_FACTOR = 20


class LearnerRunner:
    """Active learner or standby, depending on what the group assigns."""

    def __init__(self, spec: Pipeline, settings: Settings, consumer_config: dict[str, Any],
                 store: SnapshotStore, metrics: PipelineMetrics, flush: Callable[[], None],
                 key: bytes, fingerprint: str, drift: DriftOptions,
                 clock: Callable[[], float] = time.monotonic,
                 transactions: Callable[[], Transactions] | None = None) -> None:
        self.spec, self.settings, self.store, self.metrics = spec, settings, store, metrics
        self.flush, self.key, self.fingerprint, self.drift = flush, key, fingerprint, drift
        self.clock = clock
        self.topic = spec.training_topic
        self.consumer = Consumer({
            **consumer_config,
            "group.id": f"{spec.group_id}-learner",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(settings.session_timeout * 1000),
        })
        self.redo: tuple[int, int] | None = None
        """Exactly-once, after a takeover: (seq, position) of a command the committed
        position reflects but the restored snapshot does not; applied again there."""
        self.learner: Learner | None = None
        """The active learner; None on a standby."""
        self.generation = 0
        self.snapshot_id: int | None = None
        self.merge = SourceMerge(spec.partitions)
        """The examples of every partition's join, in the order of their merge times."""
        self.next_offset: int | None = None
        self.released = 0
        """Examples released by the merge so far (what a snapshot covers)."""
        self.replayable: dict[int, dict[str, int]] = {}
        """Per label join: the ids learned since its newest checkpoint (id -> its sequence
        number), which a restart of that join writes again. Its checkpoint marks say when
        they can go; the learner's own event-time seen-set may not reach back that far in a
        catch-up, where a minute of checkpoints spans days of event time."""
        self.published_offset: int | None = None
        self.published_released = 0
        self._published_at = self._progress_at = clock()
        self._publish_cost = 0.0
        self._callback_error: Exception | None = None
        self._transactions = transactions
        self.txn = transactions() if transactions is not None else None
        """Exactly-once: drift events commit with the training offset in one transaction
        (its own producer: the learner's group is not the hot path's)."""
        self.replay_until: int | None = None
        """Exactly-once, after a takeover: examples up to this merge position had their
        drift events committed before; they are learned again without writing."""
        self._committed_at = clock()
        self._rebalancing = False
        self.learner_metrics = metrics.learner(self.topic)
        """The learner's own views (``metrics``: the pipeline's, shared with partitions)."""
        self.learner_metrics.active.set(0)
        self.commands = CommandLog(consumer_config, f"{spec.group_id}-commands",
                                   spec.commands_topic, (key, *store.old_keys),
                                   self.learner_metrics)
        self.events = ConceptEvents(spec.drift_topic, metrics.drift, self.learner_metrics)

    def start(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)

    def close(self) -> None:
        """A clean stop: publish, commit, leave the group (a standby takes over)."""
        try:
            if self.learner is not None:
                self.publish()
                self._commit()
        finally:
            self.consumer.close()
            self.commands.close()
            if self.txn is not None:
                self.txn.close()
            self.learner_metrics.active.set(0)

    def step(self, produce: Callable[..., None]) -> int:
        """Learn what has arrived (never waits); returns the examples read."""
        messages = self.consumer.consume(self.settings.batch_size, timeout=0)
        if self._callback_error is not None:
            error, self._callback_error = self._callback_error, None
            raise error
        learner = self.learner
        if learner is None:
            return 0
        progress = produce
        if self.txn is not None:  # outputs in the transaction; progress records are gauges
            produce, progress = self.txn.producer.produce, self.store.producer.produce
        candidates = learner.candidates
        before, duplicates = candidates.examples, learner.duplicates
        merge = self.merge
        for message in messages:
            if message.error():
                continue
            record = orjson.loads(message.value())
            if merge.mark(record, message.offset()):
                if record.get("checkpoint") is not None:
                    self._forget_replayable(record["source"], record["checkpoint"])
                continue
            src = record.get("src") or (0, 0)  # an older version's record lacks src and m
            event_id = str(record["event_id"])
            if event_id in learner.seen or event_id in self.replayable.get(src[0], ()):
                learner.duplicates += 1  # a join replayed after a restart
                merge.skip(message.offset())
                continue
            m = record.get("m")
            merge.add(src[0], None, record.get("label_time") if m is None else m,
                      message.offset(), record)
        # One at a time: a policy action publishes a snapshot mid-loop, and the merge's
        # state in it must hold exactly the examples not learned yet.
        while True:
            if self.redo is not None and merge.released == self.redo[1]:
                self._redo_command()
                if self.learner is not learner:
                    return len(messages)  # stood down (its version could not be loaded)
                learner = self.learner
                candidates = learner.candidates
            if merge.peek() is None:
                break
            example = merge.pop()
            self.released += 1
            served = candidates.ids[candidates.champion]
            if learner.learn(example) and "src" in example:
                source, seq = example["src"]
                self.replayable.setdefault(source, {})[str(example["event_id"])] = seq
            if candidates.signals or learner.actions:
                replayed = self.replay_until is not None and merge.released <= self.replay_until
                self._drift_events(discard if replayed else produce, example.get("label_time"),
                                   served)
                if self.learner is not learner:
                    return len(messages)  # its commit was aborted: rewound to a snapshot
            if self.replay_until is not None and merge.released >= self.replay_until:
                log.info("learner: replayed to example position %d; writing again",
                         self.replay_until)
                self.replay_until = None
        self.next_offset = merge.restart_offset()
        self.learner_metrics.merged(merge.waiting, late=merge.counts.pop("late", 0))
        if self.replay_until is None and self.redo is None:  # where it did before
            for command, offset in self.commands.new():
                self._apply_safely(command, offset, produce)
                if self.learner is None:
                    break  # stood down: the rest is read again by the next learner
        learner = self.learner
        if learner is None:  # a command's version could not be loaded, and we stood down
            return len(messages)
        candidates = learner.candidates
        self.learner_metrics.examples_learned.inc(max(0, candidates.examples - before))
        if learner.duplicates > duplicates:
            self.learner_metrics.duplicates.inc(learner.duplicates - duplicates)
        if candidates.examples:
            model = learner.model
            self.metrics.scores.set(GLOBAL_MODEL, model.score.get(), model.rolling_score.get())
            if len(candidates.models) > 1 or self.spec.models is not None:
                for name, each in candidates.models.items():
                    self.learner_metrics.set_candidate_scores(name, each.score.get(),
                                                  each.rolling_score.get())
        now = self.clock()
        if now - self._progress_at >= PROGRESS_INTERVAL_S:
            self._progress_at = now
            self.learner_metrics.examples.set(candidates.examples)
            progress(self.spec.models_topic, key=progress_key(GLOBAL_MODEL).encode(),
                     value=orjson.dumps({"examples": candidates.examples,
                                         "generation": self.generation}))
        if self.txn is not None and now - self._committed_at >= self.settings.commit_interval:
            self._commit_transaction()
        return len(messages)

    # -- exactly-once ----------------------------------------------------------------------

    def _commit_transaction(self) -> bool:
        """Commit the drift events written since the last commit with the training offset
        and merge position they reflect; False if it was aborted (then rewound)."""
        assert self.txn is not None
        self._committed_at = self.clock()
        if self.learner is None or self.replay_until is not None:
            return True  # nothing new: what a replay computes was committed before
        offsets = []
        offset = self.merge.restart_offset()
        if offset is not None:
            meta = orjson.dumps({"r": self.merge.released, "c": self.commands.seq,
                                 "cp": self.commands.at}).decode()
            offsets.append(TP(self.topic, 0, offset, metadata=meta))
        try:
            self.txn.commit(offsets, self.consumer.consumer_group_metadata())
        except TransactionAborted:
            self._rejoin()
            return False
        except ProducerFenced:
            self.txn.close()
            assert self._transactions is not None
            self.txn = self._transactions()
            self._rejoin()
            return False
        return True

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

    def publish_due(self) -> bool:
        if self.learner is None or (self.next_offset == self.published_offset
                                    and self.released == self.published_released):
            return False
        interval = max(self.settings.publish_interval,
                       PUBLISH_COST_FACTOR * self._publish_cost)
        return self.clock() - self._published_at >= interval

    def publish(self, action: dict[str, Any] | None = None, replaced: int | None = None,
                parent: int | None = None) -> bool:
        """Snapshot the candidates with their training offset and seen-set (callers flush
        first, so every drift event before it is acknowledged). ``action``: what made this
        version (a registry entry); ``replaced``: the version served before, when the
        champion's model changed."""
        learner = self.learner
        if learner is None:
            return False
        if (self.txn is not None and self.replay_until is None
                and not self._commit_transaction()):
            return False  # aborted: standing by
        self.next_offset = self.merge.restart_offset()  # now: a policy publishes mid-batch
        if self.next_offset is None:
            return True
        started = time.perf_counter()
        sid = self.store.next_id(GLOBAL_MODEL)
        candidates = learner.candidates
        meta: dict[str, Any] = {
            "champion": candidates.champion, "candidates": candidates.summary(),
            "policy": candidates.policy.name, "action": action, "command_seq": self.commands.seq,
            "command_at": self.commands.at,
            "merge": self.merge.state(),
        }
        if replaced is not None:
            meta.update(replaced=replaced, promoted=True)
        snapshot = build_snapshot(
            candidates, model_name=GLOBAL_MODEL, snapshot_id=sid,
            parent=self.snapshot_id if parent is None else parent,
            offsets={self.topic: {0: self.next_offset}}, fingerprint=self.fingerprint,
            key=self.key, chunk_bytes=self.settings.snapshot_chunk_bytes,
            generation=self.generation, extra=orjson.dumps(
                {"seen": learner.seen, "replayable": self.replayable},
                option=orjson.OPT_NON_STR_KEYS), meta=meta,
        )
        if action is not None:  # (tests kill here: committed, its version not written)
            failpoints.hit("learner-command-committed" if "seq" in action
                           else "learner-action-committed")
        size = self.store.write(snapshot)
        self._publish_cost = time.perf_counter() - started
        self.metrics.snapshots.wrote(self._publish_cost, size)
        self.snapshot_id, self.published_offset = sid, self.next_offset
        self.published_released = self.released
        self._published_at = self.clock()
        self.learner_metrics.examples.set(candidates.examples)
        log.debug("published global snapshot %d (%d examples, offset %d)", sid,
                  candidates.examples, self.next_offset)
        return True

    def _commit(self) -> None:
        if self.published_offset is not None and self.txn is None:
            self.consumer.commit(offsets=[TP(self.topic, 0, self.published_offset)],
                                 asynchronous=False)

    def _drift_events(self, produce: Callable[..., None], at_time: Any, served: str) -> None:
        """Each detector signal of the example just learned (``action`` "alert"), then each
        thing the policy did, which is also a registry version, published now."""
        assert self.learner is not None
        learner = self.learner
        candidates = learner.candidates
        self.events.signals(produce, candidates, at_time)
        actions = [a for a in learner.actions if a.kind != "alert"]
        learner.actions.clear()
        for action in actions:
            self.events.action(produce, action, at_time)
        if actions:
            changed = candidates.ids[candidates.champion] != served
            self.publish(action=actions[-1].as_dict(),
                         replaced=self.snapshot_id if changed else None)

    # -- registry commands ------------------------------------------------------------------

    def _apply_safely(self, command: dict[str, Any], offset: int,
                      produce: Callable[..., None]) -> None:
        try:
            self._apply(command, produce)
        except (CommandRefused, SnapshotRefused) as exc:
            self.commands.refused(exc, offset)

    def _redo_command(self) -> None:
        """Apply again the command the committed position reflects (its drift event was
        committed: not written again; its version was not: written now)."""
        assert self.redo is not None
        seq, _ = self.redo
        self.redo = None
        try:
            command = self.commands.find(seq)
            log.info("learner: applying command %d again at example position %d, where it "
                     "took effect before", seq, self.merge.released)
            self._apply(command, discard, redo=True)
        except (CommandRefused, SnapshotRefused) as exc:
            # Its version is gone or no longer verifies (a dropped old key): learning goes
            # on without it rather than every takeover failing on it.
            log.error("learner: command %d cannot be applied again (%s); learning on without "
                      "it", seq, exc)
            self.learner_metrics.refuse_command(getattr(exc, "reason", "refused"))

    def _apply(self, command: dict[str, Any], produce: Callable[..., None],
               redo: bool = False) -> None:
        """Make a stored version the learner's model; it keeps learning from here.
        ``redo``: again after a takeover, where the version before it is stored already."""
        assert self.learner is not None
        self.flush()
        # What serves now becomes a version of its own (a rollback's target); False: its
        # commit was aborted, and this learner stands by.
        if not redo and not self.publish():
            return
        self.flush()
        self.store.load([GLOBAL_MODEL])  # every stored manifest and version
        manifests = self.store.manifests[GLOBAL_MODEL].values()
        target = (command["version"] if command["command"] == "promote"
                  else rollback_target(manifests))
        if target is None:
            raise CommandRefused("nothing_to_roll_back", "no version was ever replaced")
        restored = self.store.load_version(GLOBAL_MODEL, target)
        candidates = candidate_set(restored.model, self.spec, self.drift)
        learner = self.learner
        before = learner.candidates.ids[learner.candidates.champion]
        candidates.examples = learner.candidates.examples  # example numbers go on
        learner.candidates = candidates
        self.commands.applied(command, self.merge.released)
        replaced = self.snapshot_id
        action = Action(command["command"], candidates.examples, before,
                        candidates.ids[candidates.champion], f"command {command['seq']}: "
                        f"version {target}")
        self.events.action(produce, action, None)
        # The version it makes is its registry record (its manifest's action names the
        # command's seq and target), outside any transaction like every snapshot.
        if not self.publish(action={**action.as_dict(), "version": target,
                                    "seq": command["seq"]}, replaced=replaced, parent=target):
            return
        self.flush()
        log.warning("%s applied: version %d serves again (as version %s), learning from "
                    "offset %s of %s", command["command"], target, self.snapshot_id,
                    self.next_offset, self.topic)

    # -- rebalance (inside consume, on the hot path's thread) -------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TP]) -> None:
        try:
            self.consumer.assign(self._activate(partitions))
        except Exception as exc:  # raised by step, after librdkafka is done with it
            self._callback_error = exc

    def _activate(self, partitions: list[TP]) -> list[TP]:
        if not partitions:
            return partitions
        self.flush()  # a snapshot still in flight is one the restore must see
        found = self.store.load([GLOBAL_MODEL]).get(GLOBAL_MODEL)
        self.generation = self.events.generation = self.store.claims.get(GLOBAL_MODEL, 0) + 1
        self.store.claim(GLOBAL_MODEL, self.generation)
        self.flush()  # the claim is on the log before any snapshot of this generation
        learner = Learner(candidate_set(found.model if found is not None else None,
                                        self.spec, self.drift), self.spec.label_ttl_ms,
                          score_served=not self.spec.has_candidates)
        self.released = self.published_released = 0
        self.replayable = {}
        manifest = found.manifest if found is not None else {}
        if found is None:
            offset, self.snapshot_id = None, None
            self.merge = SourceMerge(self.spec.partitions)
            log.info("active learner (generation %d): no snapshot; learning from the start of "
                     "%s", self.generation, self.topic)
        else:
            self.replayable = load_seen(learner, found.extra)
            offset = found.manifest["offsets"][self.topic]["0"]
            self.snapshot_id = found.manifest["snapshot_id"]
            self.merge = SourceMerge.restore(self.spec.partitions, found.manifest.get("merge"),
                                             offset)
            log.info("active learner (generation %d): restored snapshot %d (%d examples); "
                     "resuming %s at offset %d", self.generation, self.snapshot_id,
                     learner.examples, self.topic, offset)
        self.commands.activate(manifest.get("command_seq") or 0, manifest.get("command_at") or 0)
        self.learner, self.next_offset = learner, offset
        self.published_offset = offset
        self._published_at = self.clock()
        self.learner_metrics.active.set(1)
        self.learner_metrics.generation.set(self.generation)
        committed = self._committed()
        position = committed.get("r")
        self.replay_until = (position if position is not None
                             and position > self.merge.released else None)
        if self.replay_until is not None:
            log.info("learner: replaying to example position %d without writing",
                     self.replay_until)
        self.redo = ((committed["c"], committed["cp"])
                     if committed.get("c", 0) > self.commands.seq else None)
        for tp in partitions:
            tp.offset = OFFSET_BEGINNING if offset is None else offset
        return partitions

    def _forget_replayable(self, source: int, checkpoint: int) -> None:
        window = self.replayable.get(source)
        if window:
            self.replayable[source] = {i: seq for i, seq in window.items() if seq > checkpoint}

    def _on_revoke(self, consumer: Consumer, partitions: list[TP]) -> None:
        if self.learner is not None and partitions:
            self._rebalancing = True
            try:
                self.flush()
                if self.publish():
                    self.flush()
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
                self.txn.close()
                assert self._transactions is not None
                self.txn = self._transactions()
        self._deactivate()

    def _deactivate(self) -> None:
        if self.learner is not None:
            log.info("learner generation %d: standing by", self.generation)
            self.commands.deactivate()
        self.learner = None
        self.learner_metrics.active.set(0)
