"""Model snapshots on Kafka: write them to ``<name>.models``, find the newest valid one.

The topic is compacted and keyed ``<model>/<snapshot_id>/<chunk|manifest>``, so each version
survives compaction until it is deleted on purpose: after writing a snapshot the store
tombstones the keys of versions older than the newest ``snapshots_kept``. Reading is done
with no consumer group (every worker reads the whole topic), from the beginning to the end
offset seen at the start.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import (
    Producer,
)

from streamlearn.kafka.reader import (
    consume_to_end,
    end_offsets,
    records,
    watermark_offsets,
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
    "consume_to_end", "end_offsets", "read_versions", "records", "watermark_offsets",
]

log = logging.getLogger(__name__)


@dataclass
class StoredVersion:
    manifest: dict[str, Any] | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)
    extra: dict[int, bytes] = field(default_factory=dict)
    claimed_before: int = 0
    """The highest learner generation claimed on the log before its manifest: a manifest of
    a lower generation was written by a learner already replaced (a zombie)."""

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


def collect_versions(
    records: Iterable[tuple[bytes | None, bytes | None]], models: Iterable[str],
    claims: dict[str, int] | None = None,
) -> dict[str, dict[int, StoredVersion]]:
    """Fold the topic's records, in order, into the versions of ``models`` they leave.

    ``claims`` (if given) receives each model's highest learner generation claimed. Each
    version notes the highest claim before its manifest (fencing is by log order: a claim
    fences the versions of older generations written after it, not those before it).
    """
    wanted = set(models)
    found: dict[str, dict[int, StoredVersion]] = {m: defaultdict(StoredVersion) for m in wanted}
    claimed: dict[str, int] = {}
    for raw_key, value in records:
        text = raw_key.decode("utf-8", "replace") if raw_key else ""
        parsed = parse_key(text) if text else None
        if parsed is None:
            model, _, kind = text.rpartition("/")
            if kind == "claim" and model in wanted and value:
                claimed[model] = max(claimed.get(model, 0), _generation(value))
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
            version.claimed_before = claimed.get(model, 0)
        elif part.isdigit():
            version.chunks[int(part)] = value
        elif part[:1] == "x" and part[1:].isdigit():
            version.extra[int(part[1:])] = value
    if claims is not None:
        claims.update(claimed)
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
            if version.manifest.get("generation", 0) < version.claimed_before:
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
