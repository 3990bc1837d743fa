"""One partition written by several sources, read in an order that is a function of the logs.

Several writers append to one partition of ``<name>.served`` (the predictor of every events
partition) and of ``<name>.training`` (the label join of every ``.served`` partition), in
whatever order they happen to run. Reading such a partition in arrival order would make what
comes out depend on how fast each writer was: a catch-up would differ from real time.

So every data record carries its source, a sequence number that grows with each record the
source writes, and a *merge time* ``m``: the
source's event time, as a running maximum, so it never decreases within a source. Each
source also writes watermark records (``m`` of its next record will be at least this), and
an *idle* mark once it has read all its input and seen nothing new for a while. The reader,
a :class:`SourceMerge`, releases records in the order ``(m, source, seq)``, and releases one
only when no source that is not idle can still write one before it:

>>> merge = SourceMerge(sources=2)
>>> merge.add(0, 1, 10.0, offset=0, value="a")  # source 0, seq 1, m 10
>>> merge.release()  # source 1 may still write something before m 10
[]
>>> merge.add(1, 1, 12.0, offset=1, value="b")
>>> merge.release()
['a']
>>> merge.watermark(0, 15.0, offset=2)  # nothing from source 0 below m 15
>>> merge.release()
['b']

A source replays after a crash: what it wrote before is skipped by its sequence number, when
that number names the same record in every replay (a predictor's is the offset of the event
it served). Readers whose sources cannot promise that (the label joins: what a join emits
after a restart depends on what it is given) pass ``seq=None`` and drop copies themselves
(the learner, by event id).

>>> merge.add(0, 1, 10.0, offset=3, value="a again")
>>> merge.release(), merge.counts["duplicate"]
([], 1)

The one place timing still counts is idleness: a source that has read all its input and
seen nothing new for ``STREAMLEARN_IDLE_AFTER`` seconds is not waited for. A record it writes
later with a merge time below what was released already is released at once, out of order,
and counted ``late``. While records keep coming (every source at least once per idle time)
or while a source still lags its input's end, no record is ever late.

Offline, once every source has written all it will, the same order is a sort:
:func:`in_order`.

The reader checkpoints :meth:`state` with the offset it restarts from (the oldest record it
holds but has not released) and the offsets it held: of the records re-read up to where it
had read, exactly those are held again, whatever their sequence numbers.

>>> merge = SourceMerge(sources=2)
>>> merge.add(0, 1, 10.0, offset=0, value="a")
>>> merge.add(1, 1, 5.0, offset=1, value="b")
>>> merge.release()  # "a" waits: source 1 may still write something before m 10
['b']
>>> state, restart = merge.state(), merge.restart_offset()
>>> again = SourceMerge.restore(2, state, restart)
>>> again.add(0, None, 10.0, offset=0, value="a")  # re-read from offset 0
>>> again.add(1, None, 5.0, offset=1, value="b")
>>> restart, again.waiting, again.release(), again.counts["replayed"]
(0, 1, [], 1)
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["SourceMerge", "in_order"]

NEVER = float("-inf")


class SourceMerge:
    """Holds records until every source that is not idle has passed them."""

    def __init__(self, sources: int) -> None:
        self.sources = sources
        self.seq = [-1] * sources
        """Newest sequence number taken (held or released) per source."""
        self.marks = [NEVER] * sources
        """Per source: its records to come have a merge time at least this."""
        self.idle = [False] * sources
        self.held = [0] * sources
        self._heap: list[tuple[float, int, int, int, Any]] = []
        self.last: tuple[float, int] = (NEVER, -1)
        """(m, source) of the newest record released."""
        self.next_offset: int | None = None
        """Offset after the last record read."""
        self.released = 0
        """Records released so far: a position that grows in the order they come out."""
        self.counts: Counter[str] = Counter()
        """late (released out of order after an idle source woke) and duplicate records."""
        self._replay_end = -1
        """After a restore: records below this offset were read before the checkpoint..."""
        self._replay_held: list[tuple[int, int]] = []
        """...and of those, only the ones in these [start, end) ranges were still held."""

    # -- input -------------------------------------------------------------------------------

    def add(self, source: int, seq: int | None, m: float, offset: int, value: Any) -> None:
        """A data record of ``source`` read at ``offset``; ``seq`` None: not deduplicated
        (ties in ``m`` then go by the order read)."""
        self.next_offset = offset + 1
        self.idle[source] = False
        if offset < self._replay_end and not _within(offset, self._replay_held):
            self.counts["replayed"] += 1  # released before the checkpoint
            return
        if seq is None:
            seq = self.seq[source] + 1
        elif seq <= self.seq[source]:
            self.counts["duplicate"] += 1
            return
        self.seq[source] = seq
        if m > self.marks[source]:
            self.marks[source] = m
        self.held[source] += 1
        heapq.heappush(self._heap, (m, source, seq, offset, value))

    def watermark(self, source: int, m: float | None, offset: int, idle: bool = False
                  ) -> None:
        """A watermark record of ``source``: its next records have merge times >= ``m``;
        ``idle``: it has read all its input and seen nothing new for a while."""
        self.next_offset = offset + 1
        if m is not None and m > self.marks[source]:
            self.marks[source] = m
        self.idle[source] = idle

    def mark(self, record: dict[str, Any], offset: int) -> bool:
        """Apply ``record`` if it is a watermark record (True), else leave it (False)."""
        if "watermark" not in record:
            return False
        self.watermark(record["source"], record["watermark"], offset, record.get("idle", False))
        return True

    def skip(self, offset: int) -> None:
        """A record that is neither data nor watermark (read past, nothing held)."""
        self.next_offset = offset + 1

    # -- output ------------------------------------------------------------------------------

    def frontier(self) -> tuple[float, int] | None:
        """The lowest (m, source) a source with nothing held can still write; None when
        every such source is idle."""
        low = None
        for source in range(self.sources):
            if not self.held[source] and not self.idle[source]:
                key = (self.marks[source], source)
                if low is None or key < low:
                    low = key
        return low

    def peek(self) -> tuple[float, Any] | None:
        """(m, value) of the next record in order, if it can be released now."""
        if not self._heap:
            return None
        m, source, *_ = head = self._heap[0]
        low = self.frontier()
        if low is not None and (m, source) >= low:
            return None
        return m, head[4]

    def pop(self) -> Any:
        """Release the record :meth:`peek` showed."""
        m, source, _, _, value = heapq.heappop(self._heap)
        self.held[source] -= 1
        self.released += 1
        if (m, source) < self.last:
            self.counts["late"] += 1
        else:
            self.last = (m, source)
        return value

    def release(self) -> list[Any]:
        """Every record that can be released now, in order."""
        out = []
        while self.peek() is not None:
            out.append(self.pop())
        return out

    def bound(self) -> float | None:
        """A lower bound on the merge time of the next record released; None when nothing
        is held and every source is idle (the input is idle)."""
        low = self.frontier()
        if self._heap:
            m = self._heap[0][0]
            return m if low is None else min(m, low[0])
        return None if low is None else low[0]

    @property
    def waiting(self) -> int:
        """Records held, waiting for a slower source."""
        return len(self._heap)

    # -- checkpoints ---------------------------------------------------------------------------

    def restart_offset(self) -> int | None:
        """Where a restart reads from: the oldest record held, else the next one."""
        if self._heap:
            return min(entry[3] for entry in self._heap)
        return self.next_offset

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (with :meth:`restart_offset`): per source the newest
        sequence number released, its mark and idleness, and the newest record released."""
        released = list(self.seq)
        for _, source, seq, _, _ in self._heap:
            released[source] = min(released[source], seq - 1)
        return {"seq": released, "marks": [None if m == NEVER else m for m in self.marks],
                "read": self.next_offset, "held": _ranges(entry[3] for entry in self._heap),
                "idle": list(self.idle), "last": [None if self.last[0] == NEVER
                                                  else self.last[0], self.last[1]],
                "released": self.released}

    @classmethod
    def restore(cls, sources: int, state: dict[str, Any] | None,
                next_offset: int | None) -> SourceMerge:
        """The merge as of a checkpoint (``state`` None: from the start)."""
        merge = cls(sources)
        merge.next_offset = next_offset
        if state:
            n = min(sources, len(state["seq"]))
            merge.seq[:n] = state["seq"][:n]
            merge.marks[:n] = [NEVER if m is None else m for m in state["marks"][:n]]
            merge.idle[:n] = state["idle"][:n]
            last = state["last"]
            merge.last = (NEVER if last[0] is None else last[0], last[1])
            merge.released = state.get("released", 0)
            if state.get("read") is not None:
                merge._replay_end = state["read"]
                merge._replay_held = [tuple(r) for r in state.get("held") or []]
        return merge


def _ranges(offsets: Iterable[int]) -> list[list[int]]:
    """Sorted offsets as [start, end) ranges (held records are mostly runs).

    >>> _ranges([7, 3, 4, 5, 9])
    [[3, 6], [7, 8], [9, 10]]
    """
    out: list[list[int]] = []
    for offset in sorted(offsets):
        if out and out[-1][1] == offset:
            out[-1][1] += 1
        else:
            out.append([offset, offset + 1])
    return out


def _within(offset: int, ranges: list[tuple[int, int]]) -> bool:
    i = bisect.bisect_right(ranges, (offset, float("inf"))) - 1
    return i >= 0 and ranges[i][0] <= offset < ranges[i][1]


def in_order(records: Iterable[dict[str, Any]],
             identity: Callable[[dict[str, Any]], Any] | None = None) -> list[dict[str, Any]]:
    """The data records of a merged partition, read whole, in the order a reader releases
    them: each record once (the first copy read, by ``identity``: by default its source and
    sequence number; the learner drops copies by ``event_id``), then sorted by
    (m, source), then as read; watermark records are left out. Records without source
    fields come first.

    >>> in_order([{"id": "b", "src": [1, 0], "m": 5}, {"watermark": 9, "source": 0},
    ...           {"id": "a", "src": [0, 0], "m": 5}, {"id": "b", "src": [1, 0], "m": 5}])
    [{'id': 'a', 'src': [0, 0], 'm': 5}, {'id': 'b', 'src': [1, 0], 'm': 5}]
    """
    identity = identity or (lambda record: (record["src"][0], record["src"][1]))
    seen: set[Any] = set()
    keyed = []
    for i, record in enumerate(records):
        if "watermark" in record:
            continue
        src = record.get("src")
        if src is None:
            keyed.append(((NEVER, -1, i), record))
            continue
        key = identity(record)
        if key in seen:
            continue
        seen.add(key)
        keyed.append(((record["m"], src[0], i), record))
    keyed.sort(key=lambda pair: pair[0])
    return [record for _, record in keyed]
