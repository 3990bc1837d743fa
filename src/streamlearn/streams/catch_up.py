"""Which input partitions are read to their end, and which are idle.

An operator that merges inputs waits for an input that has nothing buffered while it still
lags its end offset: the records it waits for exist, they are just not read yet. It stops
waiting only for an *idle* input: one read to its end position that has stayed so, with
nothing new, for ``idle_after`` seconds. That wall-clock wait is the one place where timing
enters (``streams.merge``); it only matters when a partition falls silent.

The end is librdkafka's cached high watermark (updated by every fetch response, also the
empty ones of a long poll), so asking costs no request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import TopicPartition as TP

__all__ = ["CatchUp"]

Position = tuple[str, int]


class _Offsets(Protocol):
    def get_watermark_offsets(self, partition: TP, timeout: float = ..., cached: bool = ...
                              ) -> tuple[int, int] | None: ...


class CatchUp:
    """Positions read per input partition, compared with their ends."""

    def __init__(self, consumer: _Offsets, idle_after: float,
                 clock: Callable[[], float] = time.monotonic,
                 on_idle: Callable[[str], None] | None = None) -> None:
        self.consumer = consumer
        self.idle_after = idle_after
        self.clock = clock
        self.on_idle = on_idle
        self._next: dict[Position, int | None] = {}
        self._since: dict[Position, float | None] = {}
        self._idle: set[Position] = set()

    def start(self, position: Position, offset: int | None) -> None:
        """Assigned, reading from ``offset`` (None: from the earliest retained)."""
        self._next[position] = offset
        self._since[position] = None
        self._idle.discard(position)

    def forget(self, position: Position) -> None:
        self._next.pop(position, None)
        self._since.pop(position, None)
        self._idle.discard(position)

    def read(self, position: Position, next_offset: int) -> None:
        """A record was read: the partition is not idle."""
        self._next[position] = next_offset
        self._since[position] = None
        self._idle.discard(position)

    def caught_up(self, position: Position) -> bool:
        """Read to the end position (as of the last fetch)."""
        if position not in self._next:
            return False
        ends = self.consumer.get_watermark_offsets(TP(*position), cached=True)
        if not ends or ends[1] < 0:
            return False
        low, high = ends
        offset = self._next[position]
        return (low if offset is None else offset) >= high

    def idle(self, position: Position) -> bool:
        """Read to its end, with nothing new, for ``idle_after`` seconds."""
        if not self.caught_up(position):
            self._since[position] = None
            self._idle.discard(position)
            return False
        now = self.clock()
        since = self._since.get(position)
        if since is None:
            self._since[position] = since = now
        if now - since < self.idle_after:
            return False
        if position not in self._idle:
            self._idle.add(position)
            if self.on_idle is not None:
                self.on_idle(position[0])
        return True
