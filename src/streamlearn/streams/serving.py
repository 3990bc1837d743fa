"""Every worker serves the newest snapshot of the global model.

A :class:`ModelFollower` reads ``<name>.models`` with no consumer group (every worker reads
all of it), from the beginning, and keeps reading. When the manifest of a newer version of
the global model arrives, it is verified (signature, versions, digest) before anything is
unpickled, then unpickled on the follower's own thread and swapped in with one assignment:
the hot path takes ``follower.current`` at the start of each batch, so a batch is served by
one version. Unpickling holds the GIL, which is why the learner publishes no more often
than ``STREAMLEARN_PUBLISH_INTERVAL`` (and at least 20x the time a snapshot takes).

Fencing: a learner that takes over writes a claim with its generation first; versions from
an older generation read after that claim (a learner that was replaced but does not know it
yet) are ignored.

Candidates: when the snapshot holds several candidate models, the champion serves and the
others (shadows) predict too; their predictions go to the served record only.

Staleness: the learner writes its progress (examples learned) about once a second; the
gap between that and the served model's examples is ``streamlearn_model_staleness_examples``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streamlearn.kafka.snapshots import StoredVersion, watermark_offsets
from streamlearn.models.candidates import Candidates
from streamlearn.models.online import OnlineModel
from streamlearn.models.snapshot import GLOBAL_MODEL, MANIFEST, SnapshotRefused, parse_key, restore
from streamlearn.monitoring.metrics import PipelineMetrics

__all__ = ["ModelFollower", "Served"]

log = logging.getLogger(__name__)

POLL_S = 0.2
CATCH_UP_TIMEOUT_S = 60.0


class Served(NamedTuple):
    """What a batch is served by, swapped as one object."""

    model: OnlineModel
    """The champion."""
    instance: str | None
    """The champion's instance id (``tree#1``); None for a plain single model."""
    shadows: tuple[tuple[str, str, OnlineModel], ...]
    """(name, instance id, model) of each other candidate."""
    examples: int
    """Examples the learner had learned when it saved this version."""


def served_set(payload: OnlineModel | Candidates) -> Served:
    if isinstance(payload, OnlineModel):
        return Served(payload, None, (), payload.version)
    champion = payload.champion
    shadows = tuple((name, payload.ids[name], model) for name, model in payload.models.items()
                    if name != champion)
    return Served(payload.models[champion], payload.ids[champion], shadows, payload.examples)


class ModelFollower:
    """The global model as last published, read from ``<name>.models``."""

    def __init__(self, consumer_config: dict[str, Any], topic: str, key: bytes,
                 fingerprint: str, fresh: Callable[[], OnlineModel | Candidates],
                 metrics: PipelineMetrics,
                 old_keys: Sequence[bytes] = ()) -> None:
        self.topic = topic
        self.key, self.old_keys, self.fingerprint = key, tuple(old_keys), fingerprint
        self.current: Served = served_set(fresh())
        """What is served: a fresh model until a snapshot is read."""
        self.serving: tuple[int, int] = (0, 0)
        """(generation, snapshot id) of the model served."""
        self.claimed = 0
        self.learner_examples = 0
        self.metrics = metrics
        self._versions: dict[int, StoredVersion] = defaultdict(StoredVersion)
        self._consumer = Consumer({**consumer_config, "enable.auto.commit": False,
                                   "group.id": "streamlearn-model-follower"})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="streamlearn-model-follower",
                                        daemon=True)
        self.serving_metrics = metrics.serving()

    @property
    def model(self) -> OnlineModel:
        """The champion served."""
        return self.current.model

    def start(self) -> None:
        """Read what is there (the newest model is served before the first event), then
        follow on a thread."""
        self._consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        low, high = watermark_offsets(self._consumer, TopicPartition(self.topic, 0),
                                      CATCH_UP_TIMEOUT_S)
        position, deadline = low, time.monotonic() + CATCH_UP_TIMEOUT_S
        tp = TopicPartition(self.topic, 0)
        while position < high and time.monotonic() < deadline:
            for message in self._consumer.consume(500, timeout=POLL_S):
                if not message.error():
                    self._fold(message.key(), message.value())
            # The position, not the last offset seen: the end may be a transaction marker.
            position = max(position, self._consumer.position([tp])[0].offset)
        if self.serving != (0, 0):
            log.info("serving the global model, snapshot %d (%d examples)", self.serving[1],
                     self.current.examples)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for message in self._consumer.consume(500, timeout=POLL_S):
                    if not message.error():
                        self._fold(message.key(), message.value())
            except Exception:  # a bad record must not stop serving; the next one may do
                log.exception("reading %s", self.topic)

    def _fold(self, raw_key: bytes | None, value: bytes | None) -> None:
        key = raw_key.decode("utf-8", "replace") if raw_key else ""
        parsed = parse_key(key)
        if parsed is None:
            model, _, kind = key.rpartition("/")
            if model == GLOBAL_MODEL and value:
                record = orjson.loads(value)
                if kind == "claim":
                    self.claimed = max(self.claimed, int(record["generation"]))
                elif kind == "progress" and record.get("generation", 0) >= self.claimed:
                    self.learner_examples = int(record["examples"])
                    self._gauges()
            return
        model, sid, part = parsed
        if model != GLOBAL_MODEL:
            return
        if value is None:
            self._versions.pop(sid, None)
        elif part == MANIFEST:
            self._manifest(sid, orjson.loads(value))
        elif part.isdigit():
            self._versions[sid].chunks[int(part)] = value

    def _manifest(self, sid: int, manifest: dict[str, Any]) -> None:
        version = self._versions.pop(sid, StoredVersion())
        for old in [s for s in self._versions if s < sid]:  # never committed, or superseded
            del self._versions[old]
        generation = manifest.get("generation", 0)
        if generation < self.claimed or (generation, sid) <= self.serving:
            return  # fenced (a replaced learner), or not newer than the model served
        started = time.perf_counter()
        try:
            model = restore(manifest, [version.chunks[i] for i in sorted(version.chunks)],
                            key=self.key, fingerprint=self.fingerprint, old_keys=self.old_keys)
        except SnapshotRefused as exc:
            log.error("%s; still serving snapshot %d", exc, self.serving[1])
            self.metrics.snapshots.refuse(exc.reason)
            return
        if not isinstance(model, OnlineModel | Candidates):
            return
        self.serving_metrics.load_seconds.observe(time.perf_counter() - started)
        current = served_set(model)
        self.current, self.serving = current, (generation, sid)  # the swap: one assignment
        self.learner_examples = max(self.learner_examples, current.examples)
        self._gauges()

    def _gauges(self) -> None:
        examples = self.current.examples
        self.serving_metrics.examples.set(examples)
        self.serving_metrics.staleness.set(max(0, self.learner_examples - examples))
