"""The label join between Kafka records and examples, and the global learner's dedup."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from river import linear_model

from streamlearn.kafka.records import watermark_record
from streamlearn.models.candidates import Candidates
from streamlearn.models.learner import Learner
from streamlearn.monitoring import metrics as sl_metrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams.join import JoinProcessor
from streamlearn.streams.processor import OutputList

SPEC = Pipeline(name="p", key_field="k", event_id_field="id", features={"a": "numeric"},
                label_type="boolean", partitions=2, label_ttl="1m", model=dict)


@dataclass
class Record:
    _topic: str
    _value: bytes
    _offset: int
    _timestamp: int = 0

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 1

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp)

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self._value

    def headers(self) -> Any:
        return None


def served(event_id: str, t: int, offset: int, source: int = 0, m: float | None = None,
           seq: int | None = None, **extra: Any) -> Record:
    """A served record of events partition ``source``, made of its event at ``seq``
    (default: ``offset``)."""
    record = {"event_id": event_id, "key": "k", "x": {"a": 1.0}, "champion": "m",
              "predictions": {"m": {"prediction": False, "proba": None, "model_version": 0}},
              "event_time": t, "src": [source, offset if seq is None else seq],
              "m": t if m is None else m, **extra}
    return Record(SPEC.served_topic, orjson.dumps(record), offset)


def mark(source: int, m: float | None, offset: int, idle: bool = False) -> Record:
    return Record(SPEC.served_topic, watermark_record(source, m, idle), offset)


def label(event_id: str, value: Any, offset: int, t: int | None = None) -> Record:
    record = {"event_id": event_id, "label": value, **({"time": t} if t is not None else {})}
    return Record(SPEC.labels_topic, orjson.dumps(record), offset, _timestamp=7_000)


def processor() -> tuple[JoinProcessor, CollectorRegistry]:
    registry = CollectorRegistry()
    bound = sl_metrics.create(registry).bind(SPEC.name, "m")
    return JoinProcessor(SPEC, 1, bound, max_event_bytes=1000), registry


def examples(out: OutputList) -> list[dict]:
    return [orjson.loads(o.value) for o in out if o.topic == SPEC.training_topic]


def test_either_side_first_joins_once_and_bad_labels_are_dead_letters():
    join, registry = processor()
    out = OutputList()
    join.add([
        served("e1", 1_000, 0),
        label("e2", True, 0, t=1_500),  # before its served record
        label("e1", True, 1, t=2_000),
        served("e2", 1_200, 1, m=1_200),
        label("e1", False, 2, t=2_500),  # a second label: counted, never learned
        Record(SPEC.labels_topic, b"{oops", 3),
        Record(SPEC.labels_topic, b'{"event_id": "e3", "label": 3}', 4),
        served("e4", 1_300, 2, label=True),  # the label rode in the event
        mark(1, None, 3, idle=True),  # events partition 1 never had an event
        mark(0, 1_300, 4, idle=True),
    ])
    join.drain(out, labels_idle=True)
    got = examples(out)
    # In event time: e1 (1,000), e2 (1,200), e4 (1,300) are served before any label.
    assert [(e["event_id"], e["label"], e["label_time"]) for e in got] == [
        ("e4", True, 1_300), ("e2", True, 1_500), ("e1", True, 2_000)]
    assert "label" not in got[0]["x"] and got[0]["x"] == {"a": 1.0}
    assert [e["src"] for e in got] == [[1, 3], [1, 4], [1, 5]] and got[2]["m"] == 2_000
    dead = [dict(o.headers or [])["streamlearn.error.reason"] for o in out
            if o.topic == SPEC.dlq_topic]
    assert dead == [b"invalid_json", b"bad_type"]
    get = registry.get_sample_value
    assert get("streamlearn_labels_total", {"pipeline": "p", "outcome": "joined"}) == 3
    assert get("streamlearn_labels_total", {"pipeline": "p", "outcome": "duplicate"}) == 1
    assert join.offsets == {SPEC.served_topic: 5, SPEC.labels_topic: 5}


def test_a_label_waits_for_every_events_partition_that_is_not_idle():
    join, _ = processor()
    out = OutputList()
    join.add([label("e1", True, 0, t=5_000), served("e1", 1_000, 0, source=0)])
    join.drain(out, labels_idle=False)
    assert examples(out) == [] and join.offsets[SPEC.served_topic] == 0, (
        "events partition 1 may still serve something before t=1,000")
    join.add([mark(1, 900, 1)])
    join.drain(out, labels_idle=False)
    assert examples(out) == []
    join.add([mark(1, 6_000, 2)])
    join.drain(out, labels_idle=False)
    assert examples(out) == [] and set(join.join.pending) == {"e1"}, (
        "partition 0 may still serve something between 1,000 and 5,000")
    join.add([mark(0, 5_001, 3)])  # a served record at 5,000 would go first
    join.drain(out, labels_idle=False)
    assert [e["event_id"] for e in examples(out)] == ["e1"]


def test_a_label_without_time_takes_its_record_timestamp():
    join, _ = processor()
    out = OutputList()
    join.add([served("e1", 1_000, 0), mark(1, None, 1, idle=True),
              mark(0, 1_000, 2, idle=True), label("e1", True, 0)])
    join.drain(out, labels_idle=True)
    assert examples(out)[0]["label_time"] == 7_000


def test_a_silent_labels_partition_does_not_hold_back_expiry():
    join, registry = processor()
    out = OutputList()
    join.add([mark(1, None, 0, idle=True), served("e1", 1_000, 1), served("e2", 200_000, 2)])
    join.drain(out, labels_idle=False)
    assert join.join.counts["expired"] == 0, "labels may still come: nothing moves time"
    join.drain(out, labels_idle=True)  # read to its end and silent: idle
    assert join.join.counts["expired"] == 1 and set(join.join.pending) == {"e2"}
    assert registry.get_sample_value(
        "streamlearn_label_outcomes", {"pipeline": "p", "partition": "1",
                                       "outcome": "expired"}) == 1


def test_restore_resumes_at_the_checkpoint_offsets_with_what_was_waiting():
    join, _ = processor()
    join.add([served("e1", 1_000, 0), served("e2", 1_100, 1), mark(1, 5_000, 2),
              label("x", True, 0, t=1_150)])
    join.drain(OutputList(), labels_idle=False)
    # x waits: partition 0 may still serve something between 1,100 and 1,150.
    assert join.labels_ahead == 1 and set(join.join.pending) == {"e1", "e2"}
    state, meta = join.checkpoint_records()
    join.add([served("e3", 1_200, 3)])
    join.drain(OutputList(), labels_idle=True)
    cut_short, _ = join.checkpoint_records()  # its meta never written: rolled back

    restored, _ = processor()
    repairs = restored.restore([*state, meta, *cut_short])
    assert restored.offsets == {SPEC.served_topic: 3, SPEC.labels_topic: 0}
    assert set(restored.join.pending) == {"e1", "e2"} and restored.taken == 2
    assert [k for k, _ in repairs] == ["join/1/x", "join/1/e3"]
    out = OutputList()
    restored.add([served("e2", 1_100, 3, seq=1),  # the predictor replayed e2 after a crash
                  mark(0, 2_000, 4), label("x", True, 0, t=1_150), label("e2", False, 1,
                                                                         t=1_500)])
    restored.drain(out, labels_idle=False)
    assert [e["event_id"] for e in examples(out)] == ["e2"]
    assert restored.merge.counts["duplicate"] == 1 and set(restored.join.early) == {"x"}


def schedule(seed: int) -> tuple[list[list[tuple[str, int]]], list[tuple[str, bool, int]]]:
    """Events on two partitions (time steps of 0-30 ms, so partitions interleave) and their
    labels: 70% on time, then duplicates, labels after the 1 m TTL, and orphans."""
    rng = random.Random(seed)
    sources: list[list[tuple[str, int]]] = [[], []]
    labels = []
    for i in range(400):
        t = 10 * i + rng.randint(0, 30)
        sources[rng.randint(0, 1)].append((f"e{i}", t))
        roll = rng.random()
        if roll < 0.7:
            labels.append((f"e{i}", rng.random() < 0.5, t + rng.randint(0, 2_000)))
        elif roll < 0.75:
            labels += [(f"e{i}", True, t + 500), (f"e{i}", False, t + 900)]
        elif roll < 0.8:
            labels.append((f"e{i}", True, t + 61_000 + rng.randint(0, 3_000)))
        elif roll < 0.85:
            labels.append((f"ghost{i}", True, t + 100))
    return sources, sorted(labels, key=lambda la: la[2])


def run(sources: list[list[tuple[str, int]]], labels: list[tuple[str, bool, int]],
        backlog: bool, seed: int = 0) -> tuple[list[tuple], dict[str, int]]:
    """Feed the records as they would arrive in real time (in time order, with watermark
    records now and then) or as a backlog (labels first, then one partition, then the
    other); the join's examples and counts."""
    join, _ = processor()
    out = OutputList()
    rng = random.Random(seed)
    served_records = []
    offsets = {"served": 0, "labels": 0}

    def next_offset(kind: str) -> int:
        offsets[kind] += 1
        return offsets[kind] - 1

    for p, events in enumerate(sources):
        m = float("-inf")
        for i, (event_id, t) in enumerate(events):
            m = max(m, t)
            served_records.append((t, p, event_id, i, m))
    if backlog:
        join.add([label(e, v, next_offset("labels"), t=t) for e, v, t in labels])
        join.drain(out, labels_idle=False)
        for p in (1, 0):
            batch = [served(e, t, next_offset("served"), p, m, seq=i)
                     for t, q, e, i, m in served_records if q == p]
            join.add(batch)
            join.drain(out, labels_idle=False)
    else:
        arrivals, last = [], [0, 0]
        for r in served_records:  # a source's records arrive in its order, some ms late
            last[r[1]] = max(last[r[1]], r[0] + rng.randint(0, 40))
            arrivals.append((last[r[1]], 0, r))
        arrivals = sorted(arrivals + [(la[2], 1, la) for la in labels], key=lambda a: a[:2])
        for _, kind, r in arrivals:
            if kind == 0:
                t, p, e, i, m = r
                join.add([served(e, t, next_offset("served"), p, m, seq=i),
                          mark(1 - p, max(0, t - 100), next_offset("served"))])
            else:
                join.add([label(r[0], r[1], next_offset("labels"), t=r[2])])
            join.drain(out, labels_idle=False)
    ends = [events[-1][1] for events in sources]
    join.add([mark(p, ends[p], next_offset("served"), idle=True) for p in (0, 1)])
    join.drain(out, labels_idle=True)
    got = [(e["event_id"], e["label"], e["label_time"], e["src"], e["m"]) for e in examples(out)]
    return got, dict(join.join.counts)


def test_a_backlog_gives_what_real_time_gives():
    sources, labels = schedule(seed=5)
    real_time, counts = run(sources, labels, backlog=False)
    assert run(sources, labels, backlog=True) == (real_time, counts)
    assert run(sources, labels, backlog=False, seed=9) == (real_time, counts)
    assert counts["joined"] > 250 and counts["late"] > 10 and counts["orphan"] > 10
    assert counts["duplicate"] > 10 and counts["expired"] > 10


def test_a_restart_from_a_checkpoint_gives_what_an_uninterrupted_run_gives():
    """Real time until a crash, then a restore from the last checkpoint and the rest of
    both logs read as a backlog: the same examples (first copy of each) and counts."""
    sources, labels = schedule(seed=8)
    expected, counts = run(sources, labels, backlog=False)
    rng = random.Random(3)
    served_log: list[Record] = []
    labels_log: list[Record] = []
    arrivals, last = [], [0, 0]
    for p, events in enumerate(sources):
        m = float("-inf")
        for i, (event_id, t) in enumerate(events):
            m = max(m, t)
            last[p] = max(last[p], t + rng.randint(0, 40))
            arrivals.append((last[p], 0, (t, p, event_id, i, m)))
    arrivals.sort(key=lambda a: a[:2])
    arrivals = sorted(arrivals + [(la[2], 1, la) for la in labels], key=lambda a: a[:2])
    steps = []
    for _, kind, r in arrivals:
        if kind == 0:
            t, p, e, i, m = r
            batch = [served(e, t, len(served_log), p, m, seq=i),
                     mark(1 - p, max(0, t - 100), len(served_log) + 1)]
            served_log += batch
        else:
            batch = [label(r[0], r[1], len(labels_log), t=r[2])]
            labels_log += batch
        steps.append(batch)
    ends = [events[-1][1] for events in sources]
    served_log += [mark(p, ends[p], len(served_log) + p, idle=True) for p in (0, 1)]

    join, _ = processor()
    out = OutputList()
    committed: list = []
    for n, batch in enumerate(steps[: len(steps) * 2 // 3]):
        join.add(batch)
        join.drain(out, labels_idle=False)
        if n % 97 == 96:
            state, meta = join.checkpoint_records()
            committed += [*state, meta]
    join.checkpoint_records()  # cut short by the crash: never committed

    restored, _ = processor()
    restored.restore(committed)
    offsets = restored.offsets
    restored.add(labels_log[offsets[SPEC.labels_topic]:])
    restored.drain(out, labels_idle=False)
    restored.add(served_log[offsets[SPEC.served_topic]:])
    restored.drain(out, labels_idle=False)
    restored.drain(out, labels_idle=True)
    first: dict[str, tuple] = {}
    for e in examples(out):
        first.setdefault(e["event_id"], (e["event_id"], e["label"], e["label_time"], e["src"],
                                          e["m"]))
    assert sorted(first.values(), key=lambda e: (e[4], e[3])) == expected
    assert dict(restored.join.counts) == counts


def test_the_learner_learns_each_event_once_and_forgets_after_two_ttls():
    learner = Learner(Candidates({"m": linear_model.LogisticRegression}), ttl_ms=1_000)

    def example(event_id: str, t: float) -> dict:
        return {"event_id": event_id, "x": {"a": 1.0}, "label": True, "label_time": t,
                "champion": "m", "predictions": {"m": {"prediction": False}}}

    assert learner.learn(example("e1", 0)) and not learner.learn(example("e1", 0))
    assert learner.learn(example("e2", 1_500))
    assert learner.learn(example("e3", 2_500))  # e1 is now more than 2 TTLs behind
    assert set(learner.seen) == {"e2", "e3"} and learner.duplicates == 1
    again = Learner(Candidates({"m": linear_model.LogisticRegression}), ttl_ms=1_000)
    again.load_seen(learner.seen_bytes())
    assert not again.learn(example("e2", 1_500))
    assert learner.model.version == 3 and learner.model.scorer.values() == [0.0]
