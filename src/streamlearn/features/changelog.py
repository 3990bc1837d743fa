"""Per-key state checkpointed as a changelog that a crash mid-checkpoint cannot corrupt.

Partition-local state (an entity's feature window, an event's pending label) is written to
a compacted topic as one record per key changed since the last checkpoint, keyed
``<prefix><key>``. Each record carries its checkpoint id (``ck``) and the key's value at its
previous checkpoint (``pk``, ``p``). The checkpoint only counts once what commits it is
written after the records are acknowledged (a model snapshot with the same id, or a meta
record); a restore at checkpoint ``c`` takes each key as of ``c``: a record from a later
checkpoint, which a crash cut short, falls back to its previous value, and the topic is
repaired. Values are JSON, never pickles.

>>> log = Changelog("demo/0/")
>>> log.touch("a", None, None)           # "a" did not exist at the last checkpoint
>>> records = log.records(1, {"a": {"n": 1}}.get)
>>> [k for k, _ in records]
['demo/0/a']
>>> values, repairs, lost = restore(records, "demo/0/", committed=1)
>>> values["a"], repairs, lost
((1, {'n': 1}), [], 0)
>>> restore(records, "demo/0/", committed=0)[0]   # checkpoint 1 never committed
{}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

__all__ = ["ABSENT_SINCE_ALWAYS", "Changelog", "restore"]

ABSENT_SINCE_ALWAYS = 0
"""``pk`` of a key that did not exist at its previous checkpoint (any ``c`` >= it)."""

Records = list[tuple[str, bytes | None]]


class Changelog:
    """Which keys changed since the last checkpoint, and their value at it."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._dirty: dict[str, tuple[int | None, Any]] = {}
        self._deleted: list[str] = []

    def touch(self, key: str, ck: int | None, value: Any) -> None:
        """Call before a key's first change since the last checkpoint, with its value then
        (JSON-ready, a copy) and the checkpoint that wrote it (None: none, or absent)."""
        if key not in self._dirty:
            self._dirty[key] = (ABSENT_SINCE_ALWAYS if value is None else ck, value)

    def __contains__(self, key: str) -> bool:
        return key in self._dirty

    def records(self, ck: int, current: Callable[[str], Any]) -> Records:
        """Checkpoint ``ck``'s records: each changed key's value now (``current(key)``, None
        when it is gone), and tombstones for keys deleted at the previous checkpoint."""
        records: Records = [(self.prefix + k, None) for k in self._deleted
                            if k not in self._dirty and current(k) is None]
        self._deleted = []
        for key, (pk, prev) in self._dirty.items():
            value = current(key)
            records.append((self.prefix + key,
                            orjson.dumps({"ck": ck, "e": value, "pk": pk, "p": prev})))
            if value is None:
                self._deleted.append(key)  # a real tombstone once this checkpoint counts
        self._dirty.clear()
        return records


def restore(records: Iterable[tuple[str, bytes | None]], prefix: str, committed: int | None
            ) -> tuple[dict[str, tuple[int, Any]], Records, int]:
    """Each key's (checkpoint id, value) as of checkpoint ``committed`` (None: none).

    Returns those values, the records that repair the topic (values a crash left from a
    later checkpoint go back to their previous value; deleted keys get tombstones) and how
    many keys are lost: a later checkpoint that *was* committed but whose snapshot was
    refused, so that an older one is restored, may have overwritten the value it needs.
    """
    c = -1 if committed is None else committed
    latest: dict[str, bytes | None] = {}
    for key, value in records:  # compaction may not have run: the last one counts
        if key.startswith(prefix):
            latest[key] = value
    values: dict[str, tuple[int, Any]] = {}
    repairs: Records = []
    lost = 0
    for key, raw in latest.items():
        if raw is None:
            continue
        data = orjson.loads(raw)
        if data["ck"] <= c:
            ck, value = data["ck"], data["e"]
        elif data["pk"] is not None and data["pk"] <= c:
            ck, value = data["pk"], data["p"]
            if value is not None:  # (a value that was absent gets its tombstone below)
                fixed = {"ck": ck, "e": value, "pk": ck, "p": value}
                repairs.append((key, orjson.dumps(fixed)))
        else:
            lost += data["pk"] is not None and data["pk"] != ABSENT_SINCE_ALWAYS
            repairs.append((key, None))
            continue
        if value is None:
            repairs.append((key, None))
        else:
            values[key[len(prefix):]] = (ck, value)
    return values, repairs, lost
