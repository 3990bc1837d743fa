"""The input offsets the hot path commits, and what a commit's metadata says.

At-least-once, a commit only shows progress (lag): the offsets that moved since the last.
Exactly-once, the offsets join the transaction, and their metadata records what a restore
needs to replay to without writing: where several sources merge, the merge position
released (``r``) and the offset read (``o``); for a label join, the records taken (``t``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from confluent_kafka import TopicPartition as TP

from streamlearn.streams.checkpoint import PartitionState, Position
from streamlearn.streams.join import JoinProcessor
from streamlearn.streams.transactions import COMMITTED_TIMEOUT_S

__all__ = ["committed_positions", "moved_offsets", "transaction_offsets"]


def moved_offsets(positions: Iterable[Position], partitions: Mapping[Position, PartitionState],
                  joins: Mapping[int, JoinProcessor], committed: dict[Position, int]
                  ) -> list[TP]:
    """At-least-once: the offsets that moved since the last commit (``committed`` is
    updated), the label joins' checkpointed ones included."""
    offsets = []
    for position in positions:
        state = partitions.get(position)
        offset = state.processor.next_offset if state else None
        if offset is not None and offset != committed.get(position):
            offsets.append(TP(position[0], position[1], offset))
            committed[position] = offset
    for partition, join in joins.items():
        for topic, offset in join.checkpoint_offsets.items():
            if offset != committed.get((topic, partition)):
                offsets.append(TP(topic, partition, offset))
                committed[(topic, partition)] = offset
    return offsets


def transaction_offsets(partitions: Mapping[Position, PartitionState],
                        joins: Mapping[int, JoinProcessor]) -> list[TP]:
    """Exactly-once: each input's next offset, with the position its metadata records;
    nothing for an input still replaying (behind what is committed)."""
    offsets = []
    for (topic, partition), state in partitions.items():
        offset = state.processor.next_offset
        if offset is None or state.replay_until is not None:
            continue
        meta = ""
        if state.merge is not None:
            read = state.read if state.read is not None else max(state.replay_read, offset)
            meta = orjson.dumps({"r": state.merge.released, "o": read}).decode()
        offsets.append(TP(topic, partition, offset, metadata=meta))
    for partition, join in joins.items():
        if join.replay_until is not None:
            continue
        meta = orjson.dumps({"t": join.taken}).decode()
        for topic, offset in join.offsets.items():
            offsets.append(TP(topic, partition, offset, metadata=meta))
    return offsets


def committed_positions(consumer: Any, partitions: list[TP]
                        ) -> dict[Position, tuple[int, dict[str, Any]]]:
    """The group's committed offsets of ``partitions`` and their metadata: the point a
    restore replays to without writing."""
    if not partitions:
        return {}
    out = {}
    asked = [TP(tp.topic, tp.partition) for tp in partitions]
    for tp in consumer.committed(asked, timeout=COMMITTED_TIMEOUT_S):
        if tp.offset >= 0:
            meta = orjson.loads(tp.metadata) if tp.metadata else {}
            out[(tp.topic, tp.partition)] = (tp.offset, meta)
    return out
