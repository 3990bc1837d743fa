"""The active learner: what the owner of ``<name>.training`` does between its takeover and
the moment it stands by (``streams.learner`` decides which member that is, and commits).

On takeover it restores the newest valid snapshot of the global candidate set (with its
seen-set and its merge of the label joins' examples). It learns each example in the
merge's order (``models.learner``), writes drift events, publishes a snapshot when asked
(and at once for a drift policy's action, as a registry version of its own) and applies
the signed commands of ``<name>.commands`` (a promote or a rollback).

Exactly-once: a policy action is a function of the examples, so a replay after a crash
makes it again at the same example. A command comes from outside: the runner's commits
name the newest command applied and the example position it took effect at, so a learner
that takes over from a snapshot older than that command applies it again at that position,
without writing its drift event a second time (``redo``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Message

from streamlearn.config import Settings
from streamlearn.kafka.snapshots import Restored, SnapshotStore
from streamlearn.models.candidates import Action
from streamlearn.models.drift import DriftOptions
from streamlearn.models.learner import Learner
from streamlearn.models.registry import CommandRefused, rollback_target
from streamlearn.models.snapshot import GLOBAL_MODEL, SnapshotRefused, build_snapshot, progress_key
from streamlearn.monitoring.metrics import PipelineMetrics
from streamlearn.monitoring.views import LearnerMetrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams import failpoints
from streamlearn.streams.commands import CommandLog
from streamlearn.streams.concept_events import ConceptEvents
from streamlearn.streams.learner_state import candidate_set, load_seen
from streamlearn.streams.merge import SourceMerge
from streamlearn.streams.transactions import discard

__all__ = ["ActiveLearner", "LearnerParts"]

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.0
PUBLISH_COST_FACTOR = 20
"""A snapshot is published at most every this many times what the last one cost."""


@dataclass
class LearnerParts:
    """What an active learner works with, which outlives it (one per runner)."""

    spec: Pipeline
    settings: Settings
    store: SnapshotStore
    metrics: PipelineMetrics
    learner_metrics: LearnerMetrics
    flush: Callable[[], None]
    key: bytes
    fingerprint: str
    drift: DriftOptions
    clock: Callable[[], float]
    commands: CommandLog
    events: ConceptEvents
    exactly_once: bool


class ActiveLearner:
    """The candidates of the one learner, where it is in the training topic, and what it
    publishes. ``commit``: the runner's transaction commit (exactly-once), False when it was
    aborted; then the runner stands by and sets ``stopped``."""

    def __init__(self, parts: LearnerParts, found: Restored | None, generation: int,
                 committed: dict[str, int], commit: Callable[[], bool]) -> None:
        self.parts, self.commit, self.generation = parts, commit, generation
        spec = parts.spec
        self.topic = spec.training_topic
        self.stopped = False
        self.learner = Learner(candidate_set(found.model if found is not None else None,
                                             spec, parts.drift), spec.label_ttl_ms,
                               score_served=not spec.has_candidates)
        self.released = self.published_released = 0
        """Examples released by the merge so far (what a snapshot covers)."""
        self.replayable: dict[int, dict[str, int]] = {}
        """Per label join: the ids learned since its newest checkpoint (id -> its sequence
        number), which a restart of that join writes again. Its checkpoint marks say when
        they can go; the learner's own event-time seen-set may not reach back that far in a
        catch-up, where a minute of checkpoints spans days of event time."""
        manifest = found.manifest if found is not None else {}
        offset: int | None = None
        self.snapshot_id: int | None = None
        if found is None:
            self.merge = SourceMerge(spec.partitions)
            log.info("active learner (generation %d): no snapshot; learning from the start of "
                     "%s", generation, self.topic)
        else:
            self.replayable = load_seen(self.learner, found.extra)
            offset = manifest["offsets"][self.topic]["0"]
            self.snapshot_id = manifest["snapshot_id"]
            self.merge = SourceMerge.restore(spec.partitions, manifest.get("merge"), offset)
            log.info("active learner (generation %d): restored snapshot %d (%d examples); "
                     "resuming %s at offset %d", generation, self.snapshot_id,
                     self.learner.examples, self.topic, offset)
        self.start_offset = offset
        """Where the training topic is read from (None: its start)."""
        parts.commands.activate(manifest.get("command_seq") or 0,
                                manifest.get("command_at") or 0)
        self.next_offset = self.published_offset = offset
        self.published_at = self.progress_at = parts.clock()
        self.publish_cost = 0.0
        position = committed.get("r")
        self.replay_until = (position if position is not None
                             and position > self.merge.released else None)
        """Exactly-once, after a takeover: examples up to this merge position had their
        drift events committed before; they are learned again without writing."""
        if self.replay_until is not None:
            log.info("learner: replaying to example position %d without writing",
                     self.replay_until)
        self.redo = ((committed["c"], committed["cp"])
                     if committed.get("c", 0) > parts.commands.seq else None)
        """Exactly-once, after a takeover: (seq, position) of a command the committed
        position reflects but the restored snapshot does not; applied again there."""

    # -- learning ---------------------------------------------------------------------------

    def learn(self, messages: list[Message], produce: Callable[..., None],
              progress: Callable[..., None]) -> None:
        """Learn a batch of the training topic; drift events go to ``produce``, the progress
        record to ``progress``. Returns early once ``stopped``."""
        parts, learner = self.parts, self.learner
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
                if self.stopped:
                    return
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
                if self.stopped:
                    return  # its commit was aborted: the runner stands by
                candidates = learner.candidates
            if self.replay_until is not None and merge.released >= self.replay_until:
                log.info("learner: replayed to example position %d; writing again",
                         self.replay_until)
                self.replay_until = None
        self.next_offset = merge.restart_offset()
        parts.learner_metrics.merged(merge.waiting, late=merge.counts.pop("late", 0))
        if self.replay_until is None and self.redo is None:  # where it did before
            for command, offset in parts.commands.new():
                self._apply_safely(command, offset, produce)
                if self.stopped:
                    return  # the rest is read again by the next learner
        self._export(before, duplicates, progress)

    def _export(self, before: int, duplicates: int, progress: Callable[..., None]) -> None:
        parts, learner = self.parts, self.learner
        candidates = learner.candidates
        parts.learner_metrics.examples_learned.inc(max(0, candidates.examples - before))
        if learner.duplicates > duplicates:
            parts.learner_metrics.duplicates.inc(learner.duplicates - duplicates)
        if candidates.examples:
            model = learner.model
            parts.metrics.scores.set(GLOBAL_MODEL, model.scorer)
            if len(candidates.models) > 1 or parts.spec.models is not None:
                for name, each in candidates.models.items():
                    parts.learner_metrics.set_candidate_scores(name, each.scorer)
        now = parts.clock()
        if now - self.progress_at >= PROGRESS_INTERVAL_S:
            self.progress_at = now
            parts.learner_metrics.examples.set(candidates.examples)
            progress(parts.spec.models_topic, key=progress_key(GLOBAL_MODEL).encode(),
                     value=orjson.dumps({"examples": candidates.examples,
                                         "generation": self.generation}))

    def _forget_replayable(self, source: int, checkpoint: int) -> None:
        window = self.replayable.get(source)
        if window:
            self.replayable[source] = {i: seq for i, seq in window.items() if seq > checkpoint}

    def _drift_events(self, produce: Callable[..., None], at_time: Any, served: str) -> None:
        """Each detector signal of the example just learned (``action`` "alert"), then each
        thing the policy did, which is also a registry version, published now."""
        learner = self.learner
        candidates = learner.candidates
        self.parts.events.signals(produce, candidates, at_time)
        actions = [a for a in learner.actions if a.kind != "alert"]
        learner.actions.clear()
        for action in actions:
            self.parts.events.action(produce, action, at_time)
        if actions:
            changed = candidates.ids[candidates.champion] != served
            self.publish(action=actions[-1].as_dict(),
                         replaced=self.snapshot_id if changed else None)

    # -- publishing -------------------------------------------------------------------------

    def publish_due(self) -> bool:
        if (self.next_offset == self.published_offset
                and self.released == self.published_released):
            return False
        interval = max(self.parts.settings.publish_interval,
                       PUBLISH_COST_FACTOR * self.publish_cost)
        return self.parts.clock() - self.published_at >= interval

    def publish(self, action: dict[str, Any] | None = None, replaced: int | None = None,
                parent: int | None = None) -> bool:
        """Snapshot the candidates with their training offset and seen-set (callers flush
        first, so every drift event before it is acknowledged). ``action``: what made this
        version (a registry entry); ``replaced``: the version served before, when the
        champion's model changed. False when the commit before it was aborted."""
        parts = self.parts
        if parts.exactly_once and self.replay_until is None and not self.commit():
            return False  # aborted: standing by
        self.next_offset = self.merge.restart_offset()  # now: a policy publishes mid-batch
        if self.next_offset is None:
            return True
        started = time.perf_counter()
        sid = parts.store.next_id(GLOBAL_MODEL)
        candidates = self.learner.candidates
        commands = parts.commands
        meta: dict[str, Any] = {
            "champion": candidates.champion, "candidates": candidates.summary(),
            "policy": candidates.policy.name, "action": action, "command_seq": commands.seq,
            "command_at": commands.at, "merge": self.merge.state(),
        }
        if replaced is not None:
            meta.update(replaced=replaced, promoted=True)
        snapshot = build_snapshot(
            candidates, model_name=GLOBAL_MODEL, snapshot_id=sid,
            parent=self.snapshot_id if parent is None else parent,
            offsets={self.topic: {0: self.next_offset}}, fingerprint=parts.fingerprint,
            key=parts.key, chunk_bytes=parts.settings.snapshot_chunk_bytes,
            generation=self.generation, extra=orjson.dumps(
                {"seen": self.learner.seen, "replayable": self.replayable},
                option=orjson.OPT_NON_STR_KEYS), meta=meta,
        )
        if action is not None:  # (tests kill here: committed, its version not written)
            failpoints.hit("learner-command-committed" if "seq" in action
                           else "learner-action-committed")
        size = parts.store.write(snapshot)
        self.publish_cost = time.perf_counter() - started
        parts.metrics.snapshots.wrote(self.publish_cost, size)
        self.snapshot_id, self.published_offset = sid, self.next_offset
        self.published_released = self.released
        self.published_at = parts.clock()
        parts.learner_metrics.examples.set(candidates.examples)
        log.debug("published global snapshot %d (%d examples, offset %d)", sid,
                  candidates.examples, self.next_offset)
        return True

    # -- registry commands ------------------------------------------------------------------

    def _apply_safely(self, command: dict[str, Any], offset: int,
                      produce: Callable[..., None]) -> None:
        try:
            self._apply(command, produce)
        except (CommandRefused, SnapshotRefused) as exc:
            self.parts.commands.refused(exc, offset)

    def _redo_command(self) -> None:
        """Apply again the command the committed position reflects (its drift event was
        committed: not written again; its version was not: written now)."""
        assert self.redo is not None
        seq, _ = self.redo
        self.redo = None
        try:
            command = self.parts.commands.find(seq)
            log.info("learner: applying command %d again at example position %d, where it "
                     "took effect before", seq, self.merge.released)
            self._apply(command, discard, redo=True)
        except (CommandRefused, SnapshotRefused) as exc:
            # Its version is gone or no longer verifies (a dropped old key): learning goes
            # on without it rather than every takeover failing on it.
            log.error("learner: command %d cannot be applied again (%s); learning on without "
                      "it", seq, exc)
            self.parts.learner_metrics.refuse_command(getattr(exc, "reason", "refused"))

    def _apply(self, command: dict[str, Any], produce: Callable[..., None],
               redo: bool = False) -> None:
        """Make a stored version the learner's model; it keeps learning from here.
        ``redo``: again after a takeover, where the version before it is stored already."""
        parts = self.parts
        parts.flush()
        # What serves now becomes a version of its own (a rollback's target); False: its
        # commit was aborted, and this learner stands by.
        if not redo and not self.publish():
            return
        parts.flush()
        parts.store.load([GLOBAL_MODEL])  # every stored manifest and version
        manifests = parts.store.manifests[GLOBAL_MODEL].values()
        target = (command["version"] if command["command"] == "promote"
                  else rollback_target(manifests))
        if target is None:
            raise CommandRefused("nothing_to_roll_back", "no version was ever replaced")
        restored = parts.store.load_version(GLOBAL_MODEL, target)
        candidates = candidate_set(restored.model, parts.spec, parts.drift)
        learner = self.learner
        before = learner.candidates.ids[learner.candidates.champion]
        candidates.examples = learner.candidates.examples  # example numbers go on
        learner.candidates = candidates
        parts.commands.applied(command, self.merge.released)
        replaced = self.snapshot_id
        action = Action(command["command"], candidates.examples, before,
                        candidates.ids[candidates.champion], f"command {command['seq']}: "
                        f"version {target}")
        parts.events.action(produce, action, None)
        # The version it makes is its registry record (its manifest's action names the
        # command's seq and target), outside any transaction like every snapshot.
        if not self.publish(action={**action.as_dict(), "version": target,
                                    "seq": command["seq"]}, replaced=replaced, parent=target):
            return
        parts.flush()
        log.warning("%s applied: version %d serves again (as version %s), learning from "
                    "offset %s of %s", command["command"], target, self.snapshot_id,
                    self.next_offset, self.topic)
