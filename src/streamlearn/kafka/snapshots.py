"""Model snapshots on Kafka: write them to ``<name>.models``, find the newest valid one.

The topic is compacted and keyed ``<model>/<snapshot_id>/<chunk|manifest>``, so each version
survives compaction until it is deleted on purpose: after writing a snapshot the store
tombstones the keys of versions older than the newest ``snapshots_kept``. Reading is done
with no consumer group (every worker reads the whole topic), from the beginning to the end
offset seen at the start.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from streamlearn.models.registry import protected
from streamlearn.models.snapshot import (
    MANIFEST,
    Payload,
    Snapshot,
    SnapshotIncompatible,
    SnapshotRefused,
    claim_key,
    extra_bytes,
    parse_key,
    restore,
    snapshot_key,
)

__all__ = [
    "Restored", "SnapshotStore", "StoredVersion", "collect_versions",
    "consume_to_end", "read_versions", "records", "watermark_offsets",
]

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0
NO_LEADER_YET = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                 KafkaError.UNKNOWN_TOPIC_OR_PART)


@dataclass
class StoredVersion:
    manifest: dict[str, Any] | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)
    extra: dict[int, bytes] = field(default_factory=dict)

    def parts(self) -> list[int | str]:
        """Every record key part of this version (to tombstone it)."""
        m = self.manifest or {}
        return [*range(m.get("chunks") or max(len(self.chunks), 1)),
                *(f"x{i}" for i in range(m.get("extra_chunks") or len(self.extra))), MANIFEST]


@dataclass(frozen=True)
class Restored:
    model: Payload
    manifest: dict[str, Any]
    extra: bytes = b""


def read_versions(
    consumer_config: dict[str, Any], topic: str, models: Iterable[str],
    claims: dict[str, int] | None = None,
) -> dict[str, dict[int, StoredVersion]]:
    """Every stored version (manifest and chunks) of ``models``, by model and snapshot id."""
    return collect_versions(records(consumer_config, topic), models, claims)


def records(consumer_config: dict[str, Any], topic: str, partitions: Iterable[int] | None = None
            ) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record of ``topic`` (or of its ``partitions``), in order, up to
    the end offsets seen at the start. Gives up after ``READ_TIMEOUT_S`` without progress."""
    consumer = Consumer({**consumer_config, "enable.auto.commit": False,
                         "group.id": "streamlearn-snapshot-reader"})
    try:
        meta = consumer.list_topics(topic, timeout=READ_TIMEOUT_S).topics[topic]
        wanted = meta.partitions if partitions is None else partitions
        ends = {}
        for p in wanted:
            low, high = watermark_offsets(consumer, TopicPartition(topic, p))
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        for msg in consume_to_end(consumer, topic, ends):
            yield msg.key(), msg.value()
    finally:
        consumer.close()


def consume_to_end(consumer: Consumer, topic: str, ends: dict[int, int],
                   stalled_s: float = READ_TIMEOUT_S) -> Iterator[Message]:
    """The messages below ``ends`` (partition -> end offset, taken before reading) of the
    partitions of ``topic`` that ``consumer`` is assigned; done once its position on each
    has reached its end. TimeoutError after ``stalled_s`` without progress.

    Positions, not the offset of the last message seen: a partition's last offsets can be
    transaction markers or aborted records, which are never delivered, only skipped.
    """
    pending = dict(ends)
    last: dict[int, int] = {}
    deadline = time.monotonic() + stalled_s
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {topic} made no progress for {stalled_s:g} s")
        # A short wait: consume() returns early only with 500 messages, and the position
        # check below is what ends the read (a restore reads several partitions in turn).
        for msg in consumer.consume(500, timeout=0.05):
            if not msg.error() and msg.offset() < ends.get(msg.partition(), 0):
                yield msg
        positions = {tp.partition: tp.offset for tp in
                     consumer.position([TopicPartition(topic, p) for p in pending])}
        if positions != last:
            deadline = time.monotonic() + stalled_s
        last = positions
        for p, position in positions.items():
            if position >= pending[p]:
                del pending[p]


def end_offsets(config: dict[str, Any], topic: str, partitions: int) -> dict[int, int]:
    """The end offset of each of ``topic``'s first ``partitions`` partitions."""
    consumer = Consumer({**config, "group.id": "streamlearn-offsets"})
    try:
        return {p: watermark_offsets(consumer, TopicPartition(topic, p))[1]
                for p in range(partitions)}
    finally:
        consumer.close()


def watermark_offsets(consumer: Consumer, tp: TopicPartition,
                      timeout: float = READ_TIMEOUT_S) -> tuple[int, int]:
    """(low, high) of a partition; a topic created a moment ago may have no leader yet
    (NOT_LEADER_FOR_PARTITION and other retriable errors are retried for ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0]
            # librdkafka does not flag these retriable here, but they pass once the new
            # topic's partitions have leaders.
            if not (error.retriable() or error.code() in NO_LEADER_YET) or (
                    time.monotonic() > deadline):
                raise
            time.sleep(0.5)


def collect_versions(
    records: Iterable[tuple[bytes | None, bytes | None]], models: Iterable[str],
    claims: dict[str, int] | None = None,
) -> dict[str, dict[int, StoredVersion]]:
    """Fold the topic's records, in order, into the versions of ``models`` they leave.

    ``claims`` (if given) receives each model's highest learner generation claimed.
    """
    wanted = set(models)
    found: dict[str, dict[int, StoredVersion]] = {m: defaultdict(StoredVersion) for m in wanted}
    for raw_key, value in records:
        text = raw_key.decode("utf-8", "replace") if raw_key else ""
        parsed = parse_key(text) if text else None
        if parsed is None:
            model, _, kind = text.rpartition("/")
            if claims is not None and kind == "claim" and model in wanted and value:
                claims[model] = max(claims.get(model, 0), _generation(value))
            continue
        if parsed[0] not in wanted:
            continue
        model, sid, part = parsed
        versions = found[model]
        if value is None:  # a tombstone: the whole version is being deleted
            versions.pop(sid, None)
            continue
        version = versions[sid]
        if part == MANIFEST:
            try:
                manifest = orjson.loads(value)
            except orjson.JSONDecodeError:
                manifest = {"model": model, "snapshot_id": sid}
            version.manifest = manifest if isinstance(manifest, dict) else {}
        elif part.isdigit():
            version.chunks[int(part)] = value
        elif part[:1] == "x" and part[1:].isdigit():
            version.extra[int(part[1:])] = value
    return found


def _generation(value: bytes) -> int:
    try:
        generation = orjson.loads(value).get("generation", 0)
    except (orjson.JSONDecodeError, AttributeError):
        return 0
    return generation if isinstance(generation, int) else 0


class SnapshotStore:
    """Reads and writes one pipeline's snapshots; counts refusals through ``on_refused``."""

    def __init__(
        self,
        consumer_config: dict[str, Any],
        producer: Producer,
        topic: str,
        key: bytes,
        fingerprint: str,
        kept: int,
        on_refused: Any = lambda reason: None,
        old_keys: Sequence[bytes] = (),
    ) -> None:
        self.consumer_config = consumer_config
        self.producer = producer
        self.topic = topic
        self.key = key
        self.old_keys = tuple(old_keys)
        """Keys being rotated out: accepted when loading, never used to sign."""
        self.fingerprint = fingerprint
        self.kept = kept
        self.on_refused = on_refused
        self._ids: dict[str, dict[int, list[int | str]]] = defaultdict(dict)
        """Versions known per model: snapshot id -> its record key parts (for tombstones)."""
        self.claims: dict[str, int] = {}
        """Highest learner generation claimed per model, as of the last :meth:`load`."""
        self.manifests: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        """Manifests of the versions known per model (the registry's entries)."""
        self._stored: dict[str, dict[int, StoredVersion]] = {}

    def next_id(self, model: str) -> int:
        return max(self._ids[model], default=0) + 1

    def claim(self, model: str, generation: int) -> None:
        """Record a learner's takeover: from here on, older generations' snapshots are
        ignored by every reader (acked at the caller's next flush)."""
        self.claims[model] = generation
        self.producer.produce(self.topic, key=claim_key(model).encode(),
                              value=orjson.dumps({"generation": generation}))

    def load(self, models: Iterable[str], ignore_incompatible: bool = False
             ) -> dict[str, Restored | None]:
        """The newest valid snapshot of each model (None: there is none).

        Refused versions (unsigned, tampered, wrong key) are logged, counted and skipped, so
        the previous valid one is used. An authentic snapshot of another river version or
        spec raises :class:`SnapshotIncompatible` unless ``ignore_incompatible``.
        """
        self.claims = {}
        versions = read_versions(self.consumer_config, self.topic, models, self.claims)
        result: dict[str, Restored | None] = {}
        for model, by_id in versions.items():
            self._ids[model] = {sid: v.parts() for sid, v in by_id.items()}
            self.manifests[model] = {sid: v.manifest for sid, v in by_id.items()
                                     if v.manifest is not None}
            self._stored[model] = by_id
            result[model] = self._newest_valid(model, by_id, ignore_incompatible)
        return result

    def load_version(self, model: str, sid: int) -> Restored:
        """Version ``sid`` of ``model`` as read by the last :meth:`load` (verified before it
        is unpickled); :class:`SnapshotRefused` if it is not there whole or not authentic."""
        version = self._stored.get(model, {}).get(sid)
        if version is None or version.manifest is None:
            raise SnapshotRefused({"model": model, "snapshot_id": sid}, "not_found",
                                  "no such version is stored (deleted, or never written)")
        chunks = [version.chunks[i] for i in sorted(version.chunks)]
        restored = restore(version.manifest, chunks, key=self.key,
                           fingerprint=self.fingerprint, old_keys=self.old_keys)
        extra = extra_bytes(version.manifest, [version.extra[i] for i in sorted(version.extra)])
        return Restored(restored, version.manifest, extra)

    def _newest_valid(
        self, model: str, by_id: dict[int, StoredVersion], ignore_incompatible: bool
    ) -> Restored | None:
        for sid in sorted(by_id, reverse=True):
            version = by_id[sid]
            if version.manifest is None:
                continue  # chunks without a manifest: a write cut short, never committed
            if version.manifest.get("generation", 0) < self.claims.get(model, 0):
                continue  # written by a learner that had been replaced (a zombie): fenced
            chunks = [version.chunks[i] for i in sorted(version.chunks)]
            try:
                restored = restore(version.manifest, chunks, key=self.key,
                                   fingerprint=self.fingerprint, old_keys=self.old_keys)
                extra = extra_bytes(version.manifest,
                                    [version.extra[i] for i in sorted(version.extra)])
            except SnapshotIncompatible as exc:
                if not ignore_incompatible:
                    raise
                log.warning("%s: ignored (--rebuild)", exc)
                continue
            except SnapshotRefused as exc:
                log.error("%s; falling back to an older snapshot", exc)
                self.on_refused(exc.reason)
                continue
            return Restored(restored, version.manifest, extra)
        return None

    def write(self, snapshot: Snapshot) -> int:
        """Produce the snapshot's records (acked at the caller's next flush); returns bytes.

        Then tombstone the versions beyond the newest ``kept`` of this model.
        """
        size = 0
        for key, value in snapshot.records():
            self.producer.produce(self.topic, key=key.encode(), value=value)
            size += len(value)
        model, sid = snapshot.manifest["model"], snapshot.manifest["snapshot_id"]
        known = self._ids[model]
        known[sid] = [*range(len(snapshot.chunks)),
                      *(f"x{i}" for i in range(len(snapshot.extra))), MANIFEST]
        manifests = self.manifests[model]
        manifests[sid] = snapshot.manifest
        keep = protected(manifests.values())
        for old in [s for s in sorted(known)[: -self.kept] if s not in keep]:
            manifests.pop(old, None)
            for part in known.pop(old):
                self.producer.produce(self.topic, key=snapshot_key(model, old, part).encode(),
                                      value=None)
        return size
