"""Model snapshots: a pickled model, split in chunks, described by a signed manifest.

The manifest names what the snapshot is (model, ``snapshot_id``, ``parent``, ``examples``
learned, the input ``offsets`` it reflects — the next offset to read per partition), what it
was made with (river and Python versions, the pipeline spec's fingerprint) and the payload's
``sha256``; an HMAC-SHA256 ``signature`` over all of it authenticates the whole snapshot.
Loading checks the signature, then the versions, then the digest, and only then unpickles:
unauthenticated bytes are never unpickled. Nothing here knows Kafka; ``kafka.snapshots``
moves the records.

>>> from river import linear_model
>>> from streamlearn.models.online import OnlineModel
>>> snap = build_snapshot(OnlineModel(linear_model.LogisticRegression()), model_name="p-0",
...     snapshot_id=3, parent=2, offsets={"ev": {0: 10}}, fingerprint="f", key=b"k",
...     chunk_bytes=1 << 20)
>>> [key for key, _ in snap.records()]
['p-0/3/0', 'p-0/3/manifest']
>>> restore(snap.manifest, snap.chunks, key=b"k", fingerprint="f").version
0
>>> restore(snap.manifest, snap.chunks, key=b"other", fingerprint="f")
Traceback (most recent call last):
...
streamlearn.models.snapshot.SnapshotRefused: snapshot p-0/3 refused (bad_signature): ...
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import river

from streamlearn.errors import StreamlearnError
from streamlearn.models.candidates import Candidates
from streamlearn.models.online import OnlineModel, PredictorState

__all__ = [
    "GLOBAL_MODEL",
    "MANIFEST",
    "Snapshot",
    "SnapshotIncompatible",
    "SnapshotRefused",
    "build_snapshot",
    "claim_key",
    "extra_bytes",
    "parse_key",
    "partition_model",
    "progress_key",
    "restore",
    "snapshot_key",
    "verify",
]

Payload = OnlineModel | PredictorState | Candidates
"""What a snapshot holds: a partition's model or state, or the learner's candidate set."""

MANIFEST = "manifest"
FORMAT = 1
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class SnapshotRefused(StreamlearnError):
    """Bytes that must not be unpickled (unsigned, tampered, wrong key, incomplete)."""

    def __init__(self, manifest: dict[str, Any], reason: str, detail: str) -> None:
        self.reason = reason
        name = f"{manifest.get('model')}/{manifest.get('snapshot_id')}"
        super().__init__(f"snapshot {name} refused ({reason}): {detail}")


class SnapshotIncompatible(SnapshotRefused):
    """An authentic snapshot made by another river version or another pipeline spec."""

    REMEDY = (
        "; rebuild the model by replaying the events topic (`streamlearn run PIPELINE_FILE "
        "--rebuild`) or start over (`streamlearn reset PIPELINE_FILE`)"
    )

    def __init__(self, manifest: dict[str, Any], reason: str, detail: str) -> None:
        super().__init__(manifest, reason, detail + self.REMEDY)


@dataclass(frozen=True)
class Snapshot:
    manifest: dict[str, Any]
    chunks: list[bytes]

    extra: list[bytes] = field(default_factory=list)
    """Parts only the writer reads back (the learner's seen-set), keyed ``x<i>``."""

    def records(self) -> list[tuple[str, bytes]]:
        """(key, value) in write order: the chunks, then the manifest that commits them."""
        model, sid = self.manifest["model"], self.manifest["snapshot_id"]
        out = [(snapshot_key(model, sid, i), c) for i, c in enumerate(self.chunks)]
        out += [(snapshot_key(model, sid, f"x{i}"), c) for i, c in enumerate(self.extra)]
        out.append((snapshot_key(model, sid, MANIFEST), orjson.dumps(self.manifest)))
        return out


def snapshot_key(model: str, snapshot_id: int, part: int | str) -> str:
    return f"{model}/{snapshot_id}/{part}"


def parse_key(key: str) -> tuple[str, int, str] | None:
    """``(model, snapshot_id, part)`` of a record key, None for keys of other kinds.

    >>> parse_key("partition-0/12/manifest"), parse_key("partition-0/serving")
    (('partition-0', 12, 'manifest'), None)
    """
    model, _, rest = key.rpartition("/")
    model, _, sid = model.rpartition("/")
    if not model or not sid.isdigit():
        return None
    return model, int(sid), rest


def _signature(manifest: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def build_snapshot(
    model: Payload,
    *,
    model_name: str,
    snapshot_id: int,
    parent: int | None,
    offsets: dict[str, dict[int, int]],
    fingerprint: str,
    key: bytes,
    chunk_bytes: int,
    generation: int = 0,
    extra: bytes = b"",
    meta: dict[str, Any] | None = None,
) -> Snapshot:
    """``model``: an :class:`OnlineModel`, a :class:`PredictorState` or the learner's
    :class:`Candidates`; ``extra``: bytes (not pickled) stored beside it under the same
    signature, e.g. the learner's seen-set; ``meta``: more manifest fields, signed with it
    (the registry's: candidates' metrics, the action that made the version)."""
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    chunks = _split(payload, chunk_bytes)
    extras = _split(extra, chunk_bytes)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "model": model_name,
        "snapshot_id": snapshot_id,
        "parent": parent,
        "examples": getattr(model, "version", None) or getattr(model, "examples", 0),
        "offsets": {t: {str(p): o for p, o in parts.items()} for t, parts in offsets.items()},
        "river": river.__version__,
        "python": platform.python_version(),
        "spec_fingerprint": fingerprint,
        "created_at": int(time.time() * 1000),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "bytes": len(payload),
        "chunks": len(chunks) or 1,
        "generation": generation,
        **(meta or {}),
    }
    if extras:
        manifest["extra_sha256"] = hashlib.sha256(extra).hexdigest()
        manifest["extra_chunks"] = len(extras)
    if not chunks:
        chunks = [b""]
    manifest["signature"] = _signature(manifest, key)
    return Snapshot(manifest, chunks, extras)


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def extra_bytes(manifest: dict[str, Any], parts: list[bytes]) -> bytes:
    """The extra bytes of a snapshot whose manifest :func:`verify` accepted."""
    data = b"".join(parts)
    if len(parts) != manifest.get("extra_chunks", 0) or not hmac.compare_digest(
            hashlib.sha256(data).hexdigest(), manifest.get("extra_sha256", EMPTY_SHA256)):
        raise SnapshotRefused(manifest, "bad_digest", "the extra parts do not match their sha256")
    return data


def verify(manifest: dict[str, Any], key: bytes, fingerprint: str,
           old_keys: Sequence[bytes] = ()) -> None:
    """Raise unless the manifest is signed with ``key`` (or one of the ``old_keys`` being
    rotated out) and fits this river and spec."""
    signature = manifest.get("signature")
    if not isinstance(signature, str):
        raise SnapshotRefused(manifest, "unsigned", "the manifest carries no signature")
    # Every key is tried, so the time taken does not tell which one matched.
    matches = [hmac.compare_digest(signature, _signature(manifest, k)) for k in (key, *old_keys)]
    if not any(matches):
        raise SnapshotRefused(
            manifest, "bad_signature",
            "the signature does not match (tampered, or signed with a key that is neither "
            "STREAMLEARN_MODEL_KEY nor in STREAMLEARN_MODEL_KEYS_OLD)",
        )
    if manifest.get("river") != river.__version__:
        raise SnapshotIncompatible(
            manifest, "river_version",
            f"made with river {manifest.get('river')}, this is river {river.__version__}; "
            "pickles do not survive river upgrades",
        )
    if manifest.get("spec_fingerprint") != fingerprint:
        raise SnapshotIncompatible(
            manifest, "spec_changed", "made for another version of the pipeline spec "
            "(features, label, model or partitions changed)",
        )


def restore(
    manifest: dict[str, Any], chunks: list[bytes], *, key: bytes, fingerprint: str,
    old_keys: Sequence[bytes] = (),
) -> Payload:
    """The model of a verified snapshot; :class:`SnapshotRefused` says why not."""
    verify(manifest, key, fingerprint, old_keys)
    if len(chunks) != manifest["chunks"]:
        raise SnapshotRefused(
            manifest, "incomplete", f"{len(chunks)} of {manifest['chunks']} chunks present"
        )
    payload = b"".join(chunks)
    if not hmac.compare_digest(hashlib.sha256(payload).hexdigest(), manifest["sha256"]):
        raise SnapshotRefused(manifest, "bad_digest", "the payload does not match its sha256")
    model = pickle.loads(payload)  # authenticated above: signed manifest, matching digest
    if not isinstance(model, OnlineModel | PredictorState | Candidates):
        raise SnapshotRefused(manifest, "bad_payload", f"unpickled a {type(model).__name__}")
    return model


# -- key names of the model store (``<name>.models``) ------------------------------------

GLOBAL_MODEL = "global"
"""The global learner's model (per-partition models: :func:`partition_model`)."""


def partition_model(partition: int) -> str:
    """Name of a partition's model in ``<name>.models`` (one model per input partition)."""
    return f"partition-{partition}"


def progress_key(model: str) -> str:
    """Key of the learner's progress record (examples learned, generation)."""
    return f"{model}/progress"


def claim_key(model: str) -> str:
    """Key of the record a learner writes when it takes over: its generation."""
    return f"{model}/claim"
