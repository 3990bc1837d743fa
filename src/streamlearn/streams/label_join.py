"""Joining served records with labels that arrive later, by ``event_id``, in event time.

One :class:`LabelJoin` per partition of ``<name>.served`` (``<name>.labels`` has the same
partition count and the same murmur2 partitioner, so an event's served record and its label
meet in the same partition). Whichever side comes first waits for the other:

- a served record waits for its label until ``ttl`` of event time has passed (the
  partition's watermark is the highest time either side has shown); then it is
  *expired*, and its id is remembered for one more ``ttl``, so that its label counts as
  *late* rather than *orphan*;
- a label waits for its served record for ``ttl`` too; one whose record never comes is an
  *orphan*;
- a second label for an id is a *duplicate* and never yields a second example; a served
  record seen again (a replay after a crash) is ignored.

Each count is kept; :meth:`take_counts` hands them over. The state is checkpointed as a
changelog (``streamlearn.features.changelog``, keyed ``join/<partition>/<event_id>``) with the
partition's offsets, like feature state; its meta record, written once the others are
acknowledged, commits it and carries the offsets of both topics (``streams.join``).

>>> join = LabelJoin(ttl_ms=60_000)
>>> join.served("e1", {"x": {"a": 1}}, event_time=0)
[]
>>> join.label("e1", True, label_time=5_000)
[('e1', {'x': {'a': 1}}, True, 5000)]
>>> join.label("e1", False, label_time=6_000)
[]
>>> join.take_counts()["duplicate"]
1
"""

from __future__ import annotations

import heapq
from collections import Counter
from typing import Any

import orjson

from streamlearn.features.changelog import Changelog, restore

__all__ = ["COUNTS", "Example", "LabelJoin"]

COUNTS = ("joined", "late", "orphan", "duplicate", "expired")
Example = tuple[str, Any, Any, float]
"""(event_id, served record, label, label time)."""


class LabelJoin:
    """The pending side of each event id in one partition; memory bounded by the TTL."""

    def __init__(self, ttl_ms: float, partition: int = 0) -> None:
        self.ttl_ms = ttl_ms
        self.partition = partition
        self._changes = Changelog(f"join/{partition}/")
        self._cks: dict[str, int] = {}
        """Checkpoint that last wrote each id."""
        self._meta_prev: dict[str, Any] = {"ck": 0, "wm": None}
        self.watermark = float("-inf")
        self.pending: dict[str, tuple[Any, float]] = {}
        """Served records waiting for a label: id -> (record, event time)."""
        self.early: dict[str, tuple[Any, float]] = {}
        """Labels waiting for their served record: id -> (label, label time)."""
        self.done: dict[str, float] = {}
        """Ids joined (a further label is a duplicate), until ``ttl`` after the join."""
        self.expired: dict[str, float] = {}
        """Ids expired unlabelled (a label is late, not orphan), for one more ``ttl``."""
        self.counts: Counter[str] = Counter()
        """Every outcome so far: checkpointed, so a restart neither loses nor repeats one."""
        self._taken: Counter[str] = Counter()
        self._deadlines: list[tuple[float, str, str]] = []

    def served(self, event_id: str, record: Any, event_time: float) -> list[Example]:
        """A served record; the example it completes, if its label came first."""
        self._advance(event_time)
        if event_id in self.pending or event_id in self.done or event_id in self.expired:
            return []  # seen before: a replay after a crash
        self._touch(event_id)
        early = self.early.pop(event_id, None)
        if early is None:
            self.pending[event_id] = (record, event_time)
            self._remember(event_time, "pending", event_id)
            return []
        label, label_time = early
        return [self._join(event_id, record, label, label_time)]

    def label(self, event_id: str, label: Any, label_time: float) -> list[Example]:
        """A label; the example it completes, if its served record is waiting."""
        self._advance(label_time)
        if event_id in self.done or event_id in self.early:
            self.counts["duplicate"] += 1
            return []
        if event_id in self.expired:
            self.counts["late"] += 1
            return []
        self._touch(event_id)
        waiting = self.pending.pop(event_id, None)
        if waiting is None:
            self.early[event_id] = (label, label_time)
            self._remember(label_time, "early", event_id)
            return []
        return [self._join(event_id, waiting[0], label, label_time)]

    def _join(self, event_id: str, record: Any, label: Any, label_time: float) -> Example:
        self.counts["joined"] += 1
        self.done[event_id] = label_time
        self._remember(label_time, "done", event_id)
        return (event_id, record, label, label_time)

    def _remember(self, at: float, kind: str, event_id: str) -> None:
        heapq.heappush(self._deadlines, (at, kind, event_id))

    def advance(self, t: float) -> None:
        """Move the watermark to ``t`` (the join's inputs have all passed it)."""
        self._advance(t)

    def _advance(self, t: float) -> None:
        """Move the watermark; expire what it leaves more than ``ttl`` behind (a heap:
        each id is looked at once per thing it waits for, not once per event)."""
        if t <= self.watermark:
            return
        self.watermark = t
        limit = t - self.ttl_ms
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] < limit:
            at, kind, event_id = heapq.heappop(deadlines)
            self._touch(event_id)
            if kind == "pending" and self.pending.get(event_id, (None, None))[1] == at:
                del self.pending[event_id]
                self.expired[event_id] = t
                self._remember(t, "expired", event_id)
                self.counts["expired"] += 1
            elif kind == "early" and self.early.get(event_id, (None, None))[1] == at:
                del self.early[event_id]
                self.counts["orphan"] += 1
            elif kind in ("done", "expired"):
                memory = self.done if kind == "done" else self.expired
                if memory.get(event_id) == at:
                    del memory[event_id]

    # -- checkpoints -----------------------------------------------------------------------

    def _value(self, event_id: str) -> dict[str, Any] | None:
        """An id's state as JSON (None: the join holds nothing for it)."""
        if event_id in self.pending:
            record, t = self.pending[event_id]
            return {"s": "pending", "r": record, "t": t}
        if event_id in self.early:
            label, t = self.early[event_id]
            return {"s": "early", "v": label, "t": t}
        for name, memory in (("done", self.done), ("expired", self.expired)):
            if event_id in memory:
                return {"s": name, "t": memory[event_id]}
        return None

    def _touch(self, event_id: str) -> None:
        if event_id not in self._changes:
            self._changes.touch(event_id, self._cks.get(event_id), self._value(event_id))

    def checkpoint_records(self, ck: int, offsets: dict[str, int] | None = None,
                           extra: dict[str, Any] | None = None
                           ) -> list[tuple[str, bytes | None]]:
        """The records of checkpoint ``ck`` (ids changed since the last one, then meta, which
        carries ``offsets``, the outcome counts and ``extra``); the meta record commits the
        others, so it is written once they are acknowledged."""
        records = self._changes.records(ck, self._value)
        prefix = self._changes.prefix
        for key, value in records:
            if value is not None:
                self._cks[key[len(prefix):]] = ck
        now = {"ck": ck, "wm": None if self.watermark == float("-inf") else self.watermark}
        meta = {**now, "prev": self._meta_prev, "offsets": offsets or {},
                "counts": {name: self.counts[name] for name in COUNTS}, **(extra or {})}
        self._meta_prev = now
        return [*records, (f"join/{self.partition}", orjson.dumps(meta))]

    def meta_key(self) -> str:
        return f"join/{self.partition}"

    def committed(self, records: list[tuple[str, bytes | None]]) -> dict[str, Any] | None:
        """The last meta record among ``records``: the committed checkpoint, or None."""
        metas = [v for k, v in records if k == self.meta_key() and v is not None]
        return orjson.loads(metas[-1]) if metas else None

    def restore(self, records: list[tuple[str, bytes | None]], committed: int | None
                ) -> list[tuple[str, bytes | None]]:
        """Load the state as of checkpoint ``committed``; returns the repair records."""
        values, repairs, _ = restore(records, self._changes.prefix, committed)
        for event_id, (ck, value) in values.items():
            self._cks[event_id] = ck
            state, t = value["s"], value["t"]
            if state == "pending":
                self.pending[event_id] = (value["r"], t)
            elif state == "early":
                self.early[event_id] = (value["v"], t)
            else:
                (self.done if state == "done" else self.expired)[event_id] = t
            self._remember(t, state, event_id)
        c = -1 if committed is None else committed
        metas = [v for k, v in records if k == f"join/{self.partition}" and v is not None]
        if metas:
            meta = orjson.loads(metas[-1])
            meta = meta if meta["ck"] <= c else meta["prev"]
            if meta["ck"] <= c and meta["wm"] is not None:
                self.watermark = float(meta["wm"])
                self._meta_prev = {"ck": meta["ck"], "wm": meta["wm"]}
            self.counts = Counter(meta.get("counts") or {})
            self._taken = Counter(self.counts)
        return repairs

    def take_counts(self) -> dict[str, int]:
        """What the counts grew by since the last call (the process's counters)."""
        counts = {name: self.counts[name] - self._taken[name] for name in COUNTS}
        self._taken = Counter(self.counts)
        return counts

    @property
    def waiting(self) -> int:
        """Served records and labels waiting for their other half (the gauge)."""
        return len(self.pending) + len(self.early)
