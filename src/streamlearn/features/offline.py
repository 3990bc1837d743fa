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

from kafka.partitioner.default import murmur2

from streamlearn.features.online import PartitionFeatures
from streamlearn.schema import BadEvent, parse_time

if TYPE_CHECKING:
    import pandas as pd

    from streamlearn.pipeline import Pipeline

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
    return (murmur2(entity_id(key).encode()) & 0x7FFFFFFF) % partitions


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
class OfflineRun:
    """Runs events through per-partition feature state; counts what the worker counts."""

    spec: Pipeline
    states: dict[tuple[int, int], PartitionFeatures] = field(default_factory=dict)
    """Feature state by (stage, partition)."""
    dead_letters: dict[Any, str] = field(default_factory=dict)
    """Rows the worker would dead-letter: index -> reason."""

    def rows(self, events: Iterable[tuple[Any, dict[str, Any]]]) -> Iterator[ServedRow]:
        spec = self.spec
        schema = spec.schema()
        stages = spec.stages
        for index, raw in events:
            event = {k: _plain(v) for k, v in raw.items()}
            try:
                x, y, _ = schema.check(event)
                key = read_key(event, spec.key_field)
                t = _event_time(event, spec.time_field)
                entities = [key, *(read_key(event, s.entity_field) for s in stages[1:])]
                partition = event.get("partition")
                if type(partition) is not int:
                    partition = key_partition(key, spec.partitions)
                for stage, entity in zip(stages, entities, strict=True):
                    if stage.index:  # re-keyed: the partition the entity hashes to
                        partition = key_partition(entity, spec.partitions)
                    if not stage.features:
                        continue
                    state = self.states.get((stage.index, partition))
                    if state is None:
                        state = stage.features.partition(partition, stage.operator)
                        self.states[(stage.index, partition)] = state
                    derived = state.values(event, x, entity_id(entity), t)
                    if derived:
                        x = {**x, **derived}
            except BadEvent as exc:
                self.dead_letters[index] = exc.reason
                continue
            yield ServedRow(index, partition, key, t, x, y)

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
