"""The label join's rules, each on a hand-made sequence: joined, late, orphan, duplicate,
expired, and bounded memory."""

from __future__ import annotations

import random

from streamlearn.streams.label_join import LabelJoin

S = 1000


def test_whichever_side_comes_first_waits_for_the_other():
    join = LabelJoin(ttl_ms=60 * S)
    assert join.label("a", True, label_time=0) == []
    assert join.served("a", "rec-a", event_time=1 * S) == [("a", "rec-a", True, 0)]
    assert join.served("b", "rec-b", event_time=2 * S) == []
    assert join.label("b", False, label_time=3 * S) == [("b", "rec-b", False, 3 * S)]
    assert join.take_counts() == {"joined": 2, "late": 0, "orphan": 0, "duplicate": 0,
                                  "expired": 0}


def test_expiry_late_orphan_and_duplicate_are_each_counted_once():
    join = LabelJoin(ttl_ms=10 * S)
    join.served("x", "rec", event_time=0)
    join.label("lonely", True, label_time=0)
    join.served("y", "rec", event_time=1 * S)
    join.label("y", True, label_time=2 * S)
    join.served("tick", "rec", event_time=11 * S)  # the watermark passes x's and lonely's TTL
    assert join.label("x", True, label_time=12 * S) == [], "x expired: its label is late"
    assert join.label("y", False, label_time=12 * S) == [], "y was joined: a duplicate"
    assert join.served("y", "rec", event_time=12 * S) == [], "a replayed served record"
    assert join.take_counts() == {"joined": 1, "late": 1, "orphan": 1, "duplicate": 1,
                                  "expired": 1}


def test_an_expired_id_is_forgotten_after_one_more_ttl():
    join = LabelJoin(ttl_ms=10 * S)
    join.served("x", "rec", event_time=0)
    join.served("tick", "rec", event_time=11 * S)
    join.served("tock", "rec", event_time=25 * S)
    join.label("x", True, label_time=25 * S)
    assert join.take_counts()["late"] == 0, "after two TTLs x is unknown: an orphan to be"


def test_memory_stays_bounded_by_the_ttl_on_a_long_stream():
    join = LabelJoin(ttl_ms=60 * S)
    rng = random.Random(1)
    peak = 0
    for i in range(20_000):
        t = i * 100
        join.served(f"e{i}", None, event_time=t)
        if rng.random() < 0.9:
            join.label(f"e{max(0, i - rng.randrange(50))}", True, label_time=t)
        peak = max(peak, len(join.pending) + len(join.early) + len(join.done)
                   + len(join.expired))
    assert peak < 3 * 600 + 100, "ids within two TTLs (600 events each) at most"
    assert join.waiting < 700


def run(join: LabelJoin, steps: list[tuple[str, str, int]]) -> list:
    out = []
    for kind, event_id, t in steps:
        if kind == "s":
            out += join.served(event_id, {"id": event_id}, event_time=t)
        else:
            out += join.label(event_id, True, label_time=t)
    return out


def test_a_restore_at_a_checkpoint_continues_exactly_like_no_restart():
    rng = random.Random(2)
    steps = []
    for i in range(3000):
        steps.append(("s", f"e{i}", i * 100))
        if rng.random() < 0.8:
            steps.append(("l", f"e{max(0, i - rng.randrange(40))}", i * 100 + 50))
    straight = LabelJoin(ttl_ms=2000)
    expected = run(straight, steps)
    first = LabelJoin(ttl_ms=2000)
    half = len(steps) // 2
    head = run(first, steps[:half])
    log = first.checkpoint_records(1)
    run(first, steps[half:half + 300])
    log += first.checkpoint_records(2)  # cut short: its snapshot never landed
    again = LabelJoin(ttl_ms=2000)
    repairs = again.restore(log, committed=1)
    assert repairs, "checkpoint 2's records are rolled back"
    assert head + run(again, steps[half:]) == expected
