"""The model registry: every snapshot of the learner's candidate set is a version, and signed
commands move the served lineage to another one.

A version is a snapshot of ``<name>.models`` (its ``snapshot_id``); its manifest, signed
with it, says what it holds: ``champion``, each candidate's instance, examples and scores at
save time (``candidates``), the ``action`` that made it (a drift policy's, or a command's;
None for a periodic save), ``replaced`` (the version served before, when the champion's
model changed) and ``command_seq`` (the newest command applied). The newest
``STREAMLEARN_SNAPSHOTS_KEPT`` versions are kept; versions that were promoted, those they
were promoted from and those that a promotion replaced (where a rollback goes) are never
deleted.

Commands are records on ``<name>.commands`` (one partition): ``{"seq", "command"
("promote"|"rollback"), "version", "issued_at", "signature"}``, signed with the model key
like snapshots. The active learner applies each in order once: a record with a bad signature
or a ``seq`` at or below the newest one applied (a replay) is refused with a log line and a
count. Promote V: V's candidate set becomes the learner's and keeps learning from the current
training offset (the seen-set stays the learner's, so nothing is learned twice); it is
published at once as a new version, and predictors switch when they read it. Rollback: the
version the newest champion change replaced is promoted back.

>>> command = encode_command(3, "promote", 12, key=b"k", issued_at=0)
>>> decode_command(command, keys=[b"k"])["version"]
12
>>> decode_command(command.replace(b'"version":12', b'"version":13'), keys=[b"k"])
Traceback (most recent call last):
...
streamlearn.models.registry.CommandRefused: command refused (bad_signature): the signature does ...
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from streamlearn.errors import StreamlearnError

__all__ = [
    "COMMANDS",
    "CommandRefused",
    "Version",
    "decode_command",
    "encode_command",
    "protected",
    "rollback_target",
]

COMMANDS = ("promote", "rollback")


class CommandRefused(StreamlearnError):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"command refused ({reason}): {detail}")


def _signature(body: dict[str, Any], key: bytes) -> str:
    canonical = orjson.dumps({k: v for k, v in body.items() if k != "signature"},
                             option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def encode_command(seq: int, command: str, version: int | None, *, key: bytes,
                   issued_at: int | None = None) -> bytes:
    """A signed command record's value."""
    if command not in COMMANDS:
        raise CommandRefused("unknown_command", f"{command!r} is not one of {COMMANDS}")
    body: dict[str, Any] = {
        "seq": seq, "command": command, "version": version,
        "issued_at": int(time.time() * 1000) if issued_at is None else issued_at,
    }
    body["signature"] = _signature(body, key)
    return orjson.dumps(body)


def decode_command(raw: bytes | None, keys: Sequence[bytes]) -> dict[str, Any]:
    """The command in ``raw`` if one of ``keys`` signed it; :class:`CommandRefused` if not."""
    try:
        body = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        raise CommandRefused("invalid_json", "the record is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("signature"), str):
        raise CommandRefused("unsigned", "the record carries no signature")
    matches = [hmac.compare_digest(body["signature"], _signature(body, k)) for k in keys]
    if not any(matches):
        raise CommandRefused("bad_signature", "the signature does not match (tampered, or "
                             "signed with another STREAMLEARN_MODEL_KEY)")
    if body.get("command") not in COMMANDS or type(body.get("seq")) is not int:
        raise CommandRefused("bad_command", f"unknown command {body.get('command')!r}")
    if body["command"] == "promote" and type(body.get("version")) is not int:
        raise CommandRefused("bad_command", "promote needs a version number")
    return body


@dataclass(frozen=True)
class Version:
    """One registry version: a snapshot's manifest, as ``models list`` shows it."""

    manifest: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.manifest["snapshot_id"])

    @property
    def action(self) -> dict[str, Any] | None:
        return self.manifest.get("action")


def protected(manifests: Iterable[dict[str, Any]]) -> dict[int, str]:
    """Versions never deleted, and why: the promoted ones, those they were promoted from
    (``models promote V`` serves a copy of V) and those a promotion replaced.

    >>> protected([{"snapshot_id": 7, "promoted": True, "parent": 2, "replaced": 6}])
    {7: 'promoted', 2: 'promoted from', 6: 'replaced'}
    """
    keep: dict[int, str] = {}
    for manifest in manifests:
        if manifest.get("promoted"):
            keep[int(manifest["snapshot_id"])] = "promoted"
            if manifest.get("parent") is not None:
                keep.setdefault(int(manifest["parent"]), "promoted from")
        if manifest.get("replaced") is not None:
            keep.setdefault(int(manifest["replaced"]), "replaced")
    return keep


def rollback_target(manifests: Iterable[dict[str, Any]]) -> int | None:
    """The version the newest champion change replaced (None: nothing to roll back to)."""
    changes = [m for m in manifests if m.get("replaced") is not None]
    if not changes:
        return None
    return int(max(changes, key=lambda m: int(m["snapshot_id"]))["replaced"])
