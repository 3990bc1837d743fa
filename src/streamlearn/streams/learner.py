"""The one learner of a pipeline under global learning, and its standbys.

Every worker runs a :class:`LearnerRunner`: a consumer of ``<name>.training`` (one
partition) in a group of its own, ``<group>-learner``. The member that owns the partition is
the active learner; the others are standbys with nothing assigned. On assignment the new
learner reads the newest valid snapshot of the global model (with its seen-set), claims the
next generation (a record that makes every reader ignore older generations' snapshots, so a
replaced learner that does not know it yet cannot publish over its successor) and resumes
at the snapshot's offset of the training topic. It learns each example in the topic's order
(``models.learner``), writes drift events, and publishes a snapshot every
``STREAMLEARN_PUBLISH_INTERVAL`` seconds (plus a progress record each second, for the
predictors' staleness gauge). On revoke and on a clean stop it publishes and commits.
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
from streamlearn.models.drift import DriftOptions
from streamlearn.models.learner import Learner
from streamlearn.models.online import OnlineModel
from streamlearn.models.snapshot import build_snapshot
from streamlearn.monitoring.metrics import BoundMetrics
from streamlearn.pipeline import Pipeline
from streamlearn.streams.serving import GLOBAL_MODEL, progress_key
from streamlearn.streams.snapshots import SnapshotStore

__all__ = ["LearnerRunner"]

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.0
PUBLISH_COST_FACTOR = 20


class LearnerRunner:
    """Active learner or standby, depending on what the group assigns."""

    def __init__(self, spec: Pipeline, settings: Settings, consumer_config: dict[str, Any],
                 store: SnapshotStore, metrics: BoundMetrics, flush: Callable[[], None],
                 key: bytes, fingerprint: str, drift: DriftOptions,
                 clock: Callable[[], float] = time.monotonic) -> None:
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
        self.learner: Learner | None = None
        """The active learner; None on a standby."""
        self.generation = 0
        self.snapshot_id: int | None = None
        self.next_offset: int | None = None
        self.published_offset: int | None = None
        self._published_at = self._progress_at = clock()
        self._publish_cost = 0.0
        self._callback_error: Exception | None = None
        family, name = metrics.family, metrics.pipeline
        self._active = family.learner_active.labels(name)
        self._generation = family.learner_generation.labels(name)
        self._examples = family.learner_examples.labels(name)
        self._duplicates = family.examples_duplicate.labels(name)
        self._active.set(0)

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
            self._active.set(0)

    def step(self, produce: Callable[..., None]) -> int:
        """Learn what has arrived (never waits); returns the examples read."""
        messages = self.consumer.consume(self.settings.batch_size, timeout=0)
        if self._callback_error is not None:
            error, self._callback_error = self._callback_error, None
            raise error
        learner = self.learner
        if learner is None:
            return 0
        model = learner.model
        before, duplicates = model.version, learner.duplicates
        for message in messages:
            if message.error():
                continue
            example = orjson.loads(message.value())
            learner.learn(example)
            if model.signals:
                for signal in model.signals:
                    self._drift_event(signal, produce, example.get("label_time"))
                model.signals.clear()
            self.next_offset = message.offset() + 1
        self.metrics.examples_learned.inc(model.version - before)
        if learner.duplicates > duplicates:
            self._duplicates.inc(learner.duplicates - duplicates)
        if model.version:
            self.metrics.set_scores(GLOBAL_MODEL, model.score.get(), model.rolling_score.get())
        now = self.clock()
        if now - self._progress_at >= PROGRESS_INTERVAL_S:
            self._progress_at = now
            self._examples.set(model.version)
            produce(self.spec.models_topic, key=progress_key(GLOBAL_MODEL).encode(),
                    value=orjson.dumps({"examples": model.version,
                                        "generation": self.generation}))
        return len(messages)

    def publish_due(self) -> bool:
        if self.learner is None or self.next_offset == self.published_offset:
            return False
        interval = max(self.settings.publish_interval,
                       PUBLISH_COST_FACTOR * self._publish_cost)
        return self.clock() - self._published_at >= interval

    def publish(self) -> None:
        """Snapshot the model with its training offset and seen-set (callers flush first,
        so every drift event before it is acknowledged)."""
        learner = self.learner
        if learner is None or self.next_offset is None:
            return
        started = time.perf_counter()
        sid = self.store.next_id(GLOBAL_MODEL)
        snapshot = build_snapshot(
            learner.model, model_name=GLOBAL_MODEL, snapshot_id=sid, parent=self.snapshot_id,
            offsets={self.topic: {0: self.next_offset}}, fingerprint=self.fingerprint,
            key=self.key, chunk_bytes=self.settings.snapshot_chunk_bytes,
            generation=self.generation, extra=learner.seen_bytes(),
        )
        size = self.store.write(snapshot)
        self._publish_cost = time.perf_counter() - started
        self.metrics.snapshot_seconds.observe(self._publish_cost)
        self.metrics.snapshots.inc()
        self.metrics.set_snapshot_bytes(size)
        self.snapshot_id, self.published_offset = sid, self.next_offset
        self._published_at = self.clock()
        self._examples.set(learner.model.version)
        log.debug("published global snapshot %d (%d examples, offset %d)", sid,
                  learner.model.version, self.next_offset)

    def _commit(self) -> None:
        if self.published_offset is not None:
            self.consumer.commit(offsets=[TP(self.topic, 0, self.published_offset)],
                                 asynchronous=False)

    def _drift_event(self, signal: Any, produce: Callable[..., None], at_time: Any) -> None:
        assert self.learner is not None
        model = self.learner.model
        self.metrics.count_drift("concept", signal.detector, "", signal.level)
        log.warning("concept %s (%s) at example %d: %.4g", signal.level, signal.detector,
                    signal.position, signal.statistic)
        produce(self.spec.drift_topic, key=model.name.encode(), value=orjson.dumps({
            "model": model.name, "kind": "concept", "detector": signal.detector,
            "level": signal.level, "statistic": signal.statistic,
            "at_example": signal.position, "at_time": at_time, "action": "alert",
            "generation": self.generation,
        }))

    # -- rebalance (inside consume, on the hot path's thread) -------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TP]) -> None:
        try:
            self._activate(partitions)
        except Exception as exc:  # raised by step, after librdkafka is done with it
            self._callback_error = exc

    def _activate(self, partitions: list[TP]) -> None:
        if not partitions:
            return
        found = self.store.load([GLOBAL_MODEL]).get(GLOBAL_MODEL)
        self.generation = self.store.claims.get(GLOBAL_MODEL, 0) + 1
        self.store.claim(GLOBAL_MODEL, self.generation)
        self.flush()  # the claim is on the log before any snapshot of this generation
        adwin = self.settings.drift_adwin_delta if self.drift.enabled else None
        if found is None or not isinstance(found.model, OnlineModel):
            model = OnlineModel(self.spec.model(), adwin_delta=adwin)
            learner, offset, self.snapshot_id = Learner(model, self.spec.label_ttl_ms), None, None
            log.info("active learner (generation %d): no snapshot; learning from the start of "
                     "%s", self.generation, self.topic)
        else:
            model = found.model
            if not self.drift.enabled:
                model.concept = None
            learner = Learner(model, self.spec.label_ttl_ms)
            learner.load_seen(found.extra)
            offset = found.manifest["offsets"][self.topic]["0"]
            self.snapshot_id = found.manifest["snapshot_id"]
            log.info("active learner (generation %d): restored snapshot %d (%d examples); "
                     "resuming %s at offset %d", self.generation, self.snapshot_id,
                     model.version, self.topic, offset)
        self.learner, self.next_offset = learner, offset
        self.published_offset = offset
        self._published_at = self.clock()
        self._active.set(1)
        self._generation.set(self.generation)
        for tp in partitions:
            tp.offset = OFFSET_BEGINNING if offset is None else offset
        self.consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TP]) -> None:
        if self.learner is not None and partitions:
            try:
                self.flush()
                self.publish()
                self.flush()
                self._commit()
            except Exception as exc:
                self._callback_error = exc
        self._deactivate()

    def _on_lost(self, consumer: Consumer, partitions: list[TP]) -> None:
        log.warning("learner: the training partition was lost; another learner may be active")
        self._deactivate()

    def _deactivate(self) -> None:
        if self.learner is not None:
            log.info("learner generation %d: standing by", self.generation)
        self.learner = None
        self._active.set(0)
