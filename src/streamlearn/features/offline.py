"""The offline twin: the features a worker serves, computed over a table of events.

Rows are read in order, as a partition would deliver them: each row is checked against the
pipeline's types (a row the worker would dead-letter is skipped and reported), placed in the
partition its key hashes to (Kafka's murmur2, as every producer of the project does), and
given exactly the features the worker serves: the same code computes them, so values are
equal bit for bit.

>>> import pandas as pd
>>> from streamlearn import Pipeline, features as f
>>> spec = Pipeline(name="cards", key_field="card", time_field="time", model=dict,
...                 features={"amount": "numeric"},
...                 derived={"n_1m": f.count("1m"), "sum_1m": f.sum("amount", "1m")})
>>> events = pd.DataFrame({"card": ["a", "a", "b", "a"], "amount": [1.0, 2.5, 7.0, 4.0],
...                        "time": [0, 30_000, 40_000, 61_000]})
>>> compute(spec, events)
   amount  n_1m  sum_1m
0     1.0     1     1.0
1     2.5     2     3.5
2     7.0     1     7.0
3     4.0     2     6.5
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamlearn.features.online import PartitionFeatures
from streamlearn.features.stages import Stage
from streamlearn.spec.partitioner import key_partition as partition_of
from streamlearn.spec.schema import BadEvent, parse_time

if TYPE_CHECKING:
    import pandas as pd

    from streamlearn.spec.pipeline import Pipeline

NEVER = float("-inf")

__all__ = ["OfflineRun", "ServedRow", "compute", "entity_id", "key_partition", "read_key"]


def read_key(event: dict[str, Any], field: str) -> Any:
    """The event's key (a string or a number), or :class:`BadEvent`."""
    value = event.get(field)
    if value is None:
        raise BadEvent("missing_field", f"event lacks the key field {field!r}")
    if type(value) not in (str, int, float):
        raise BadEvent("bad_type", f"key field {field!r} must be a string or a number")
    return value


def entity_id(key: Any) -> str:
    """One string per entity: ``7`` and ``"7"`` are the same card, as in the record key."""
    return key if type(key) is str else str(key)


def key_partition(key: Any, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives the key.

    >>> key_partition("card-1", 1), key_partition("card-1", 12)
    (0, 11)
    """
    return partition_of(entity_id(key).encode(), partitions)


@dataclass(frozen=True)
class ServedRow:
    index: Any
    """The row's label in the input table (or its position)."""
    partition: int
    key: Any
    event_time: float
    x: dict[str, Any]
    """The model's input as the worker serves it: declared fields, then derived ones."""
    label: Any


@dataclass
class _Item:
    """An event on its way through the stages."""

    index: Any
    event: dict[str, Any]
    x: dict[str, Any]
    y: Any
    key: Any
    t: float
    entities: list[Any]
    partition: int
    order: tuple[float, int, int] = (NEVER, 0, 0)
    """Where the next (re-keyed) stage takes it: (merge time, partition, position)."""


@dataclass
class OfflineRun:
    """Runs events through per-partition feature state; counts what the worker counts."""

    spec: Pipeline
    states: dict[tuple[int, int], PartitionFeatures] = field(default_factory=dict)
    """Feature state by (stage, partition)."""
    dead_letters: dict[Any, str] = field(default_factory=dict)
    """Rows the worker would dead-letter: index -> reason."""
    _merge_times: dict[tuple[int, int], float] = field(default_factory=dict)
    _order: int = 0

    def rows(self, events: Iterable[tuple[Any, dict[str, Any]]]) -> Iterator[ServedRow]:
        """Each valid event's served row, in the order the last stage serves them.

        The first stage takes the events in table order (each partition in offset order).
        A re-keyed stage takes its partition's events in the order the worker merges them
        from every partition of the stage before (``streams.merge``): by that partition's
        event time so far, then by partition, then in its order. So the values depend on
        the events alone, never on which partition a worker happened to read first.
        """
        spec = self.spec
        schema = spec.schema()
        items: list[_Item] = []
        for index, raw in events:
            event = {k: _plain(v) for k, v in raw.items()}
            try:
                x, y, _ = schema.check(event)
                key = read_key(event, spec.key_field)
                t = _event_time(event, spec.time_field)
                entities = [key, *(read_key(event, s.entity_field) for s in spec.stages[1:])]
            except BadEvent as exc:
                self.dead_letters[index] = exc.reason
                continue
            partition = event.get("partition")
            if type(partition) is not int:
                partition = key_partition(key, spec.partitions)
            items.append(_Item(index, event, x, y, key, t, entities, partition))
        for stage in spec.stages:
            if stage.index:  # merged from every partition before: (m, partition, order)
                items.sort(key=lambda item: item.order)
            items = [item for item in items if self._apply(stage, item)]
        for item in items:
            yield ServedRow(item.index, item.partition, item.key, item.t, item.x, item.y)

    def _apply(self, stage: Stage, item: _Item) -> bool:
        """One stage's features of one event (False: the worker dead-letters it here)."""
        entity = item.entities[stage.index]
        if stage.index:  # re-keyed: the partition the entity hashes to
            item.partition = key_partition(entity, self.spec.partitions)
        if stage.features:
            state = self.states.get((stage.index, item.partition))
            if state is None:
                state = stage.features.partition(item.partition, stage.operator)
                self.states[(stage.index, item.partition)] = state
            try:
                derived = state.values(item.event, item.x, entity_id(entity), item.t)
            except BadEvent as exc:
                self.dead_letters[item.index] = exc.reason
                return False
            if derived:
                item.x = {**item.x, **derived}
        merge_time = max(self._merge_times.get((stage.index, item.partition), NEVER), item.t)
        self._merge_times[(stage.index, item.partition)] = merge_time
        self._order += 1
        item.order = (merge_time, item.partition, self._order)
        return True

    def counts(self) -> dict[str, int]:
        """Late, expired (after a final sweep) and dropped events, over every partition."""
        late = expired = dropped = 0
        for state in self.states.values():
            state.sweep()
            a, b, c = state.take_counts()
            late, expired, dropped = late + a, expired + b, dropped + c
        return {"late": late, "expired": expired, "dropped": dropped,
                "entities": sum(len(s.entities) for s in self.states.values())}


def compute(spec: Pipeline, frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input for each valid row of ``frame``, indexed like ``frame``.

    Without a time field in the spec, a ``timestamp`` column (epoch ms, the Kafka record
    timestamp) gives the event time. A ``partition`` column, when present, overrides the
    partition the key hashes to. Rows the worker would dead-letter are left out; their
    reasons are in ``result.attrs["dead_letters"]``, and the late, expired and dropped
    counts in ``result.attrs["counts"]``.
    """
    import pandas as pd

    run = OfflineRun(spec)
    served = list(run.rows(zip(frame.index, frame.to_dict("records"), strict=True)))
    position = {index: i for i, index in enumerate(frame.index)}
    served.sort(key=lambda row: position[row.index])  # in the table's order
    result = pd.DataFrame([r.x for r in served], index=[r.index for r in served])
    result.attrs["dead_letters"] = run.dead_letters
    result.attrs["counts"] = run.counts()
    return result


def _event_time(event: dict[str, Any], time_field: str | None) -> float:
    if time_field:
        return parse_time(event.get(time_field), time_field)
    return parse_time(event.get("timestamp"), "timestamp")


def _plain(value: Any) -> Any:
    """A table cell as JSON would carry it: NaN is a missing value, numpy scalars are Python."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
