"""Per-entity feature state of one input partition, and its checkpoint records.

Each entity keeps its recent events (time and the buffered fields) sorted by event time,
ties in arrival order. An event at time ``t`` is placed after every held event with a time
at or before ``t``; its windows are slices of that order, found by bisection, so an
out-of-order event sees exactly the earlier-arrived events in ``(t - w, t]``.

Rules, the same online and offline (``streamlearn.features.offline``):

- **Lateness.** An event more than ``lateness`` older than its entity's newest event is
  *too late*: it is served features over what the entity holds, but it is not added to the
  entity (later events never see it). It is counted.
- **Memory.** An entity holds the events within ``horizon + lateness`` of its newest one
  (plus one older event, the previous one of a late-but-allowed event), at most
  ``max_events``; beyond that the oldest are dropped and counted.
- **TTL.** The partition's watermark is the highest event time it has seen. An entity
  whose newest event is older than ``watermark - ttl`` is expired: counted, removed, and an
  event for it starts afresh. Expiry is decided by event time only, so it does not depend
  on when the sweep runs.

Checkpoint records go to ``<name>.state`` keyed ``features/<partition>/<entity>``. Each
carries the checkpoint id it belongs to (``ck``, the partition snapshot's id) and the
entity's value at its previous checkpoint (``pk``, ``p``), so a restore at checkpoint ``c``
takes each entity as of ``c`` even if a later checkpoint was cut short by a crash.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from river import stats

from streamlearn.features.changelog import ABSENT_SINCE_ALWAYS, Changelog, restore
from streamlearn.spec.schema import BadEvent

if TYPE_CHECKING:
    from streamlearn.features.featureset import FeatureSet

__all__ = ["DEFAULT_OPERATOR", "Entity", "PartitionFeatures", "entity_key", "meta_key"]

NEVER = -math.inf


DEFAULT_OPERATOR = "features"


def entity_key(partition: int, entity: str, operator: str = DEFAULT_OPERATOR) -> str:
    return f"{operator}/{partition}/{entity}"


def meta_key(partition: int, operator: str = DEFAULT_OPERATOR) -> str:
    return f"{operator}/{partition}"


class Entity:
    """One entity's held events (sorted by time) and where it stands in the log."""

    __slots__ = ("ck", "latest", "offset", "rows", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.rows: list[tuple[Any, ...]] = []
        self.latest = NEVER
        self.offset = -1
        self.ck: int | None = None

    def to_json(self) -> dict[str, Any]:
        # Copies: a value remembered before a change must not follow the change.
        return {"t": self.times[:], "r": self.rows[:], "l": self.latest, "o": self.offset}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], ck: int | None) -> Entity:
        entity = cls()
        entity.times = [float(t) for t in data["t"]]
        entity.rows = [tuple(r) for r in data["r"]]
        entity.latest, entity.offset, entity.ck = float(data["l"]), int(data["o"]), ck
        return entity


class PartitionFeatures:
    """The derived features of one partition's events, as of each event."""

    def __init__(self, features: FeatureSet, partition: int = 0,
                 operator: str = DEFAULT_OPERATOR) -> None:
        self.fs = features
        self.partition = partition
        self.operator = operator
        """Prefix of the state records: one per stage of the pipeline (``features.by-x``)."""
        self.entities: dict[str, Entity] = {}
        self.watermark = NEVER
        self.sources: dict[str, int] = {}
        """Re-keyed input: the highest source offset seen per source partition."""
        self.checkpoint_id: int | None = None
        self.offset: int | None = None
        """Input offset of the restored checkpoint (stages without a model use it)."""
        self.extra: dict[str, Any] = {}
        """What the stage keeps beside its entities, checkpointed with them: a re-keyed
        input's merge of its sources, the stage's merge time (``streams.merge``)."""
        self._meta_prev: dict[str, Any] = {"ck": ABSENT_SINCE_ALWAYS, "wm": None, "src": {}}
        self._changes = Changelog(entity_key(partition, "", operator))
        # Counters since the caller last took them (metrics move once per batch).
        self.late = self.expired = self.dropped = 0

    def values(self, event: dict[str, Any], x: dict[str, Any], entity_id: str, t: float,
               offset: int | None = None) -> dict[str, Any]:
        """The derived features of ``event`` (None values left out), then apply it.

        ``x`` is the event's checked input (declared fields, typed); ``offset`` its position
        in the partition, so an event the entity already holds is never applied twice.

        Raises :class:`BadEvent` (``feature_error``) before changing anything when a
        transform fails.
        """
        fs = self.fs
        out: dict[str, Any] = {}
        if fs.transforms:
            plain = {k: v for k, v in event.items() if k != fs.label_field}
            for name, fn in fs.transforms:
                try:
                    value = fn(plain)
                except Exception as exc:
                    raise BadEvent("feature_error", f"transform {name!r} raised {exc!r}") from None
                if value is not None:
                    out[name] = value
        if t > self.watermark:
            self.watermark = t
        entity = self.entities.get(entity_id)
        if entity is not None and entity.latest < self.watermark - fs.ttl_ms:
            self._touch(entity_id, entity)
            del self.entities[entity_id]
            self.expired += 1
            entity = None
        row = tuple([x.get(f) for f in fs.buffered])
        if entity is None:
            times: list[float] = []
            rows: list[tuple[Any, ...]] = []
        else:
            times, rows = entity.times, entity.rows
        hi = bisect_right(times, t)
        if fs.windowed:
            self._windows(out, times, rows, hi, row, t)
        if hi:
            for name, index in fs.lasts:
                value = rows[hi - 1][index]
                if value is not None:
                    out[name] = value
            if fs.since_previous:
                elapsed = (t - times[hi - 1]) / 1000.0
                for name in fs.since_previous:
                    out[name] = elapsed
        if entity is not None:
            if offset is not None and offset <= entity.offset:
                return out  # a replayed event the entity already holds: never twice
            if t < entity.latest - fs.lateness_ms:
                self.late += 1
                return out
        if entity is None:
            self._touch(entity_id, None)
            entity = self.entities[entity_id] = Entity()
        else:
            self._touch(entity_id, entity)
        entity.times.insert(hi, t)
        entity.rows.insert(hi, row)
        if t > entity.latest:
            entity.latest = t
        if offset is not None:
            entity.offset = offset
        self._trim(entity)
        return out

    def first_time(self, source_partition: int, source_offset: int) -> bool:
        """False for a re-keyed event seen before (its router replayed it after a crash).

        A router forwards its partition's events in offset order, so an offset at or below
        the highest seen from that source partition is a copy of one already applied.
        """
        key = str(source_partition)
        if source_offset <= self.sources.get(key, -1):
            return False
        self.sources[key] = source_offset
        return True

    def _windows(self, out: dict[str, Any], times: list[float], rows: list[tuple[Any, ...]],
                 hi: int, row: tuple[Any, ...], t: float) -> None:
        starts: dict[float, int] = {}
        held: dict[tuple[int, float], list[Any]] = {}
        for name, kind, index, window in self.fs.windowed:
            lo = starts.get(window)
            if lo is None:
                lo = starts[window] = bisect_right(times, t - window, 0, hi)
            if kind == "count":
                out[name] = hi - lo + 1
                continue
            values = held.get((index, window))
            if values is None:
                values = [r[index] for r in rows[lo:hi] if r[index] is not None]
                if row[index] is not None:
                    values.append(row[index])
                held[(index, window)] = values
            value = _aggregate(kind, values)
            if value is not None:
                out[name] = value

    def _trim(self, entity: Entity) -> None:
        times, rows = entity.times, entity.rows
        cutoff = entity.latest - self.fs.horizon_ms - self.fs.lateness_ms
        # Keep one event at or before the cutoff: the previous event of a late event.
        cut = max(bisect_right(times, cutoff) - 1, 0)
        excess = len(times) - self.fs.max_events
        if excess > cut:
            self.dropped += excess - cut
            cut = excess
        if cut > 0:
            del times[:cut]
            del rows[:cut]

    def _touch(self, entity_id: str, entity: Entity | None) -> None:
        """Remember an entity's value at the last checkpoint, before its first change."""
        if entity_id not in self._changes:
            self._changes.touch(entity_id, entity.ck if entity else None,
                                entity.to_json() if entity else None)

    def sweep(self) -> int:
        """Remove the entities expired by the watermark; returns how many."""
        limit = self.watermark - self.fs.ttl_ms
        gone = [k for k, e in self.entities.items() if e.latest < limit]
        for entity_id in gone:
            self._touch(entity_id, self.entities.pop(entity_id))
        self.expired += len(gone)
        return len(gone)

    def take_counts(self) -> tuple[int, int, int]:
        """(late, expired, dropped) since the last call."""
        counts = (self.late, self.expired, self.dropped)
        self.late = self.expired = self.dropped = 0
        return counts

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint_records(self, ck: int, offset: int | None = None
                           ) -> tuple[list[tuple[str, bytes | None]], tuple[str, bytes]]:
        """The records of checkpoint ``ck``: entities changed since the last one, and meta.

        Callers write the entity records and wait for their acks, then write what makes
        checkpoint ``ck`` count: the partition's model snapshot with the same id, or (a stage
        without a model) the meta record itself, which then carries the input ``offset``.
        """
        p, op = self.partition, self.operator
        entities = self.entities
        records = self._changes.records(
            ck, lambda k: entities[k].to_json() if k in entities else None)
        for key, value in records:
            entity = entities.get(key[len(self._changes.prefix):])
            if value is not None and entity is not None:
                entity.ck = ck
        now = {"ck": ck, "wm": _finite(self.watermark), "src": dict(self.sources),
               "extra": self.extra}
        meta = {**now, "offset": offset, "prev": self._meta_prev}
        self._meta_prev = now
        self.checkpoint_id = ck
        return records, (meta_key(p, op), orjson.dumps(meta))

    def restore(self, records: Iterable[tuple[str, bytes | None]], committed: int | None
                ) -> tuple[list[tuple[str, bytes | None]], int]:
        """Load the partition's records as of checkpoint ``committed`` (None: none).

        Returns the records that repair the topic (values from a checkpoint after
        ``committed``, which a crash cut short, go back to their previous value) and the
        number of entities lost (only when an older snapshot had to be used because a newer
        one was refused: their value at that snapshot is no longer stored).
        """
        c = -1 if committed is None else committed
        p, op = self.partition, self.operator
        records = list(records)
        metas = [v for k, v in records if k == meta_key(p, op)]
        if metas and metas[-1] is not None:  # the last one counts (compaction may lag)
            self._restore_meta(orjson.loads(metas[-1]), c)
        values, repairs, lost = restore(records, self._changes.prefix, committed)
        for entity_id, (ck, state) in values.items():
            self.entities[entity_id] = Entity.from_json(state, ck)
        self.checkpoint_id = committed
        return repairs, lost

    def _restore_meta(self, data: dict[str, Any], c: int) -> None:
        if data["ck"] <= c:
            self.offset = data.get("offset")
        else:
            data = data["prev"]
            if data["ck"] > c:
                return
        self.watermark = NEVER if data["wm"] is None else float(data["wm"])
        self.sources = dict(data["src"])
        self.extra = dict(data.get("extra") or {})
        self._meta_prev = {"ck": data["ck"], "wm": data["wm"], "src": data["src"],
                           "extra": self.extra}


def _finite(value: float) -> float | None:
    return None if value == NEVER else value


def _aggregate(kind: str, values: list[Any]) -> Any:
    if not values:
        return 0.0 if kind == "sum" else (0 if kind == "distinct" else None)
    if kind == "sum":
        return math.fsum(values)
    if kind == "mean":
        return math.fsum(values) / len(values)
    if kind == "min":
        return min(values)
    if kind == "max":
        return max(values)
    if kind == "distinct":
        return len(set(values))
    var = stats.Var()  # kind == "std"
    for value in values:
        var.update(value)
    return math.sqrt(var.get())
