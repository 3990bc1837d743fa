"""A partition's batch through its processor, as the hot path hands it over: in offset
order, or (a re-keyed stage) in the order of its sources' merge times; after an
exactly-once restore, what was committed before is computed again without writing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from streamlearn.streams.checkpoint import PartitionState
from streamlearn.streams.merge import SourceMerge
from streamlearn.streams.transactions import discard

__all__ = ["process", "process_merged"]

log = logging.getLogger(__name__)


def process(state: PartitionState, batch: list[Any], emit: Callable[..., None]) -> None:
    """A partition's events in offset order (those below ``replay_until`` not written)."""
    if state.replay_until is not None:
        batch = _replay(state, batch)
    state.processor.process_batch(batch, emit)


def process_merged(state: PartitionState, merge: SourceMerge, batch: list[Any],
                   emit: Callable[..., None]) -> None:
    """A re-keyed stage's records, processed in the order of their sources' merge times
    (``streams.merge``): what it computes does not depend on which source was read
    first. Positions (for entities' replay checks) count the records released."""
    for message in batch:
        record = orjson.loads(message.value() or b"{}")
        offset = message.offset() or 0
        state.read = offset + 1
        if merge.mark(record, offset):
            continue
        if "src" in record and "m" in record:
            # From the first stage, a record's seq is its event's offset: a replayed
            # copy has the same. A later stage's is a merge position (not deduplicated).
            seq = record["src"][1] if state.stage.index == 1 else None
            merge.add(record["src"][0], seq, record["m"], offset, message)
        else:
            merge.skip(offset)  # not a forwarded event: the processor dead-letters it
            replayed = offset < state.replay_read
            state.processor.process_batch([message], discard if replayed else emit,
                                          first_position=merge.released)
    released = merge.release()
    first = merge.released - len(released)
    if state.replay_until is not None and released:
        # Positions below replay_until were written before the crash.
        cut = max(0, min(len(released), state.replay_until - first))
        state.processor.process_batch(released[:cut], discard, first_position=first)
        released, first = released[cut:], first + cut
        if merge.released >= state.replay_until:
            _replayed(state)
    if released:
        state.processor.process_batch(released, emit, first_position=first)
    state.processor.next_offset = merge.restart_offset()


def _replay(state: PartitionState, batch: list[Any]) -> list[Any]:
    """Exactly-once, after a restore: process the events whose outputs were committed
    before (below ``replay_until``) with writes suppressed; return the rest."""
    assert state.replay_until is not None
    cut = 0
    while cut < len(batch) and (batch[cut].offset() or 0) < state.replay_until:
        cut += 1
    if cut:
        state.processor.process_batch(batch[:cut], discard)
    if cut < len(batch) or state.processor.next_offset == state.replay_until:
        _replayed(state)
    return batch[cut:]


def _replayed(state: PartitionState) -> None:
    log.info("%s[%d]: replayed to the committed position %s; writing again",
             state.stage.topic, state.processor.stage_partition, state.replay_until)
    state.replay_until = None
