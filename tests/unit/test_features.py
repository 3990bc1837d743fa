"""Derived features pinned on hand-made sequences: windows, lateness, TTL, checkpoints."""

from __future__ import annotations

import math
import statistics

import orjson
import pandas as pd
import pytest

from streamlearn import Pipeline
from streamlearn import features as f
from streamlearn.errors import PipelineError
from streamlearn.features.offline import OfflineRun, compute
from streamlearn.spec.schema import BadEvent

S = 1000  # ms


def spec(derived, **kw):
    return Pipeline(name="cards", key_field="card", time_field="time", model=dict,
                    features={"amount": "numeric", "shop": "categorical"},
                    label_field="fraud", label_type="boolean", derived=derived, **kw)


def served(pipeline, events):
    """x of each event, through the offline twin (the same code the worker runs)."""
    rows = OfflineRun(pipeline).rows(enumerate(events))
    return [r.x for r in rows]


def ev(t, amount=None, card="a", shop="s1", fraud=False):
    return {"card": card, "time": t, "amount": amount, "shop": shop, "fraud": fraud}


def test_windows_are_half_open_and_include_the_current_event():
    p = spec({"n": f.count("10s"), "s": f.sum("amount", "10s")})
    xs = served(p, [ev(0, 1.0), ev(5 * S, 2.0), ev(10 * S, 4.0), ev(10 * S + 1, 8.0)])
    # At t=10s the window is (0s, 10s]: the event at exactly 0s is out, the one at 5s in.
    assert [(x["n"], x["s"]) for x in xs] == [(1, 1.0), (2, 3.0), (2, 6.0), (3, 14.0)]


def test_each_aggregate_on_a_hand_made_sequence():
    p = spec({
        "mean": f.mean("amount", "1m"), "min": f.min("amount", "1m"),
        "max": f.max("amount", "1m"), "std": f.std("amount", "1m"),
        "shops": f.distinct("shop", "1m"), "prev": f.last("amount"),
        "gap": f.since_previous(), "big": f.transform(lambda e: e["amount"] > 5),
    })
    events = [ev(0, 3.0, shop="x"), ev(2 * S, 9.0, shop="y"), ev(3500, 6.0, shop="x")]
    first, second, third = served(p, events)
    assert "prev" not in first and "gap" not in first, "an entity's first event has no previous"
    assert first["std"] == 0.0 and first["shops"] == 1
    assert third["mean"] == 6.0 and third["min"] == 3.0 and third["max"] == 9.0
    assert third["std"] == statistics.stdev([3.0, 9.0, 6.0])
    assert third["shops"] == 2 and third["prev"] == 9.0 and third["gap"] == 1.5
    assert [x["big"] for x in (first, second, third)] == [False, True, True]


def test_entities_are_kept_apart_and_absent_values_skipped():
    p = spec({"n": f.count("1h"), "mean": f.mean("amount", "1h")})
    xs = served(p, [ev(0, 2.0), ev(S, 5.0, card="b"), ev(2 * S, None), ev(3 * S, 4.0)])
    assert [x["n"] for x in xs] == [1, 1, 2, 3]
    assert [x.get("mean") for x in xs] == [2.0, 5.0, 2.0, 3.0]


def test_an_out_of_order_event_sees_only_its_own_window_and_later_events_see_it():
    p = spec({"n": f.count("10s"), "prev": f.last("amount")}, lateness="30s")
    events = [ev(0, 1.0), ev(20 * S, 2.0), ev(5 * S, 3.0), ev(14 * S, 4.0)]
    xs = served(p, events)
    # The event at 5s arrives third: its window (-5s, 5s] holds the 0s event and itself.
    assert xs[2] == {"amount": 3.0, "shop": "s1", "n": 2, "prev": 1.0}
    # The event at 14s sees (4s, 14s]: the late 5s event was added, the 20s one is later.
    assert xs[3] == {"amount": 4.0, "shop": "s1", "n": 2, "prev": 3.0}


def test_an_event_later_than_the_lateness_is_served_but_not_kept():
    p = spec({"n": f.count("1h")}, lateness="10s")
    run = OfflineRun(p)
    xs = [r.x for r in run.rows(enumerate([ev(100 * S), ev(50 * S), ev(101 * S)]))]
    assert [x["n"] for x in xs] == [1, 1, 2], "the too-late event at 50s is not counted later"
    assert run.counts()["late"] == 1


def test_an_entity_idle_longer_than_its_ttl_expires_in_event_time():
    p = spec({"n": f.count("1m")}, entity_ttl="2m")
    run = OfflineRun(p)
    events = [ev(0), ev(10 * S, card="b"), ev(125 * S, card="b"), ev(200 * S)]
    xs = [r.x["n"] for r in run.rows(enumerate(events))]
    assert xs == [1, 1, 1, 1]
    counts = run.counts()
    assert counts["expired"] == 1 and counts["entities"] == 2, "card a came back afresh"


def test_memory_per_entity_is_bounded_by_max_entity_events():
    p = spec({"n": f.count("1h")}, max_entity_events=3)
    run = OfflineRun(p)
    xs = [r.x["n"] for r in run.rows(enumerate(ev(i * S) for i in range(6)))]
    assert xs == [1, 2, 3, 4, 4, 4], "3 held plus the current one"
    assert run.counts()["dropped"] == 3


def test_an_event_without_time_or_key_is_a_dead_letter_and_state_is_untouched():
    p = spec({"n": f.count("1h")})
    run = OfflineRun(p)
    events = [ev(0), {**ev(S), "time": None}, {**ev(S), "time": "tomorrow"},
              {**ev(S), "card": None}, ev(2 * S)]
    xs = [r.x["n"] for r in run.rows(enumerate(events))]
    assert xs == [1, 2]
    assert run.dead_letters == {1: "missing_field", 2: "bad_time", 3: "missing_field"}


def test_a_failing_transform_is_a_feature_error_and_changes_nothing():
    p = spec({"n": f.count("1h"), "ratio": f.transform(lambda e: 1 / e["amount"])})
    state = p.feature_set.partition(0)
    with pytest.raises(BadEvent, match="feature_error"):
        state.values(ev(0, 0.0), {"amount": 0.0}, "a", 0.0, 0)
    assert state.entities == {}


def test_transforms_never_see_the_label():
    seen = []
    p = spec({"t": f.transform(lambda e: seen.append(set(e)))})
    served(p, [ev(0, 1.0, fraud=True)])
    assert "fraud" not in seen[0] and "amount" in seen[0]


def test_the_declaration_refuses_what_cannot_work():
    with pytest.raises(PipelineError, match="label"):
        spec({"leak": f.last("fraud")})
    with pytest.raises(PipelineError, match="not a declared feature"):
        spec({"x": f.mean("price", "1h")})
    with pytest.raises(PipelineError, match="entity_ttl"):
        spec({"n": f.count("2d")}, entity_ttl="1d")
    with pytest.raises(PipelineError, match=r"streamlearn\.features"):
        spec({"n": 3})


def test_the_dataframe_twin_matches_event_by_event_and_skips_bad_rows():
    p = spec({"n": f.count("1m"), "s": f.sum("amount", "1m")})
    frame = pd.DataFrame([ev(0, 1.0), ev(S, math.nan), {**ev(2 * S, 3.0), "time": None}])
    out = compute(p, frame)
    assert out.equals(p.compute_features(frame))
    assert list(out.index) == [0, 1]
    assert out["n"].tolist() == [1, 2] and out["s"].tolist() == [1.0, 1.0]
    assert out.attrs["dead_letters"] == {2: "missing_field"}


def test_the_fingerprint_follows_the_feature_declaration():
    assert spec({"n": f.count("1m")}).fingerprint() != spec({"n": f.count("2m")}).fingerprint()


# -- checkpoints ----------------------------------------------------------------------------

def written(state, ck):
    """Every record of checkpoint ``ck``, the meta record last (as the worker writes them)."""
    entities, meta = state.checkpoint_records(ck)
    return [*entities, meta]


def feed(state, events, start_offset=0):
    out = []
    for i, e in enumerate(events):
        x = {"amount": e["amount"]} if e["amount"] is not None else {}
        out.append(state.values(e, x, e["card"], float(e["time"]), start_offset + i))
    return out


def test_a_restore_at_a_checkpoint_continues_exactly_like_no_restart():
    p = spec({"n": f.count("1m"), "m": f.mean("amount", "1m"), "prev": f.last("amount")})
    events = [ev(i * 7 * S, float(i), card="ab"[i % 2]) for i in range(30)]
    straight = feed(p.feature_set.partition(0), events)
    first = p.feature_set.partition(0)
    feed(first, events[:12])
    records = written(first, 1)
    restored = p.feature_set.partition(0)
    repairs, lost = restored.restore(records, committed=1)
    assert repairs == [] and lost == 0
    assert feed(restored, events[12:], start_offset=12) == straight[12:]


def test_a_checkpoint_cut_short_is_rolled_back_to_the_one_before():
    p = spec({"n": f.count("1h")})
    events = [ev(i * S, card="abc"[i % 3]) for i in range(12)]
    straight = feed(p.feature_set.partition(0), events)
    state = p.feature_set.partition(0)
    feed(state, events[:6])
    log = written(state, 1)
    feed(state, events[6:9], start_offset=6)
    log += written(state, 2)  # its snapshot never made it: 1 is the newest
    restored = p.feature_set.partition(0)
    repairs, lost = restored.restore(log, committed=1)
    assert {k for k, _ in repairs} == {"features/0/a", "features/0/b", "features/0/c"}
    assert lost == 0
    at_one = {k: e.to_json() for k, e in restored.entities.items()}
    assert feed(restored, events[6:], start_offset=6) == straight[6:]
    # The repairs put the topic back as of checkpoint 1: a second restore agrees.
    again = p.feature_set.partition(0)
    again.restore(log + repairs, committed=1)
    assert {k: e.to_json() for k, e in again.entities.items()} == at_one


def test_a_replayed_event_is_never_applied_twice():
    p = spec({"n": f.count("1h")})
    state = p.feature_set.partition(0)
    feed(state, [ev(0), ev(S)])
    before = state.entities["a"].to_json()
    feed(state, [ev(S)], start_offset=1)
    assert state.entities["a"].to_json() == before


def test_expired_entities_are_deleted_from_the_state_topic_after_the_next_checkpoint():
    p = spec({"n": f.count("1m")}, entity_ttl="2m")
    state = p.feature_set.partition(0)
    feed(state, [ev(0), ev(10 * S, card="b")])
    written(state, 1)
    feed(state, [ev(300 * S, card="b")], start_offset=2)
    assert state.sweep() == 1
    second = dict(written(state, 2))
    assert orjson.loads(second["features/0/a"])["e"] is None
    third = dict(written(state, 3))
    assert third["features/0/a"] is None, "a tombstone once the deletion is committed"


def test_a_by_feature_adds_a_re_keyed_stage_and_the_twin_runs_both():
    p = spec({"n": f.count("1h"), "shop_n": f.count("1h", by="shop")})
    assert [s.topic for s in p.stages] == ["cards", "cards.by-shop"]
    assert "cards.by-shop" in p.topics
    xs = served(p, [ev(0, card="a", shop="x"), ev(S, card="b", shop="x"),
                    ev(2 * S, card="a", shop="y")])
    assert [(x["n"], x["shop_n"]) for x in xs] == [(1, 1), (1, 2), (2, 1)]
    with pytest.raises(PipelineError, match="label"):
        spec({"n": f.count("1h", by="fraud")})


def test_a_re_keyed_copy_replayed_by_its_router_is_recognised():
    state = spec({"n": f.count("1h", by="shop")}).stages[1].features.partition(0)
    assert state.first_time(0, 5) and state.first_time(1, 2) and state.first_time(0, 6)
    assert not state.first_time(0, 5), "offset 5 of source partition 0 was seen"
    _, (key, meta) = state.checkpoint_records(1, offset=9)
    restored = spec({"n": f.count("1h", by="shop")}).stages[1].features.partition(0)
    restored.restore([(key, meta)], committed=1)
    assert restored.offset == 9 and not restored.first_time(0, 6) and restored.first_time(1, 3)
