"""The synthetic card transactions: seeded, out of order within a minute, fraud that shows in
each card's history and changes pattern at the drift point."""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from typing import Any

import pytest

from streamlearn.datasets import fraud
from streamlearn.tools.sources import SourceError, iter_events, source_length

N = 20_000
MINUTE_MS = 60_000


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return list(fraud.generate(N, seed=42))


def recent_counts(events: list[dict[str, Any]], window_ms: int) -> list[int]:
    """For each event, how many of its card's events seen so far fall in the window before it."""
    seen: dict[str, deque[int]] = defaultdict(deque)
    counts = []
    for event in events:
        time, history = event["time"], seen[event["card"]]
        counts.append(sum(1 for earlier in history if time - window_ms <= earlier < time))
        history.append(time)
        while history[0] < time - 2 * window_ms:
            history.popleft()
    return counts


def f1(flagged: list[bool], labels: list[bool]) -> float:
    hits = sum(f and y for f, y in zip(flagged, labels, strict=True))
    return 2 * hits / (sum(flagged) + sum(labels))


def best_threshold_f1(scores: list[float], labels: list[bool]) -> float:
    """F1 of the best rule ``score >= threshold`` over every threshold (ties in its favour)."""
    best, hits = 0.0, 0
    ranked = sorted(zip(scores, labels, strict=True), reverse=True)
    for flagged, (_, label) in enumerate(ranked, start=1):
        hits += label
        best = max(best, 2 * hits / (flagged + sum(labels)))
    return best


def test_one_seed_gives_one_stream_and_another_seed_a_different_one(events):
    assert list(fraud.generate(N, seed=42)) == events
    assert list(fraud.generate(N, seed=43)) != events
    assert list(events[0]) == list(fraud.COLUMNS)
    # drift_at defaults to n // 2; with the same drift point a shorter stream is a prefix.
    table = fraud.frame(200, seed=42, drift_at=N // 2)
    assert table.columns.tolist() == list(fraud.COLUMNS)
    assert table.to_dict("records") == events[:200]


def test_about_three_percent_of_events_are_fraud_on_both_sides_of_the_drift(events):
    half = N // 2
    before = sum(e["is_fraud"] for e in events[:half]) / half
    after = sum(e["is_fraud"] for e in events[half:]) / (N - half)
    assert 0.02 <= before <= 0.05
    assert 0.02 <= after <= 0.05


def test_times_advance_by_hundreds_of_ms_and_late_events_stay_within_a_minute(events):
    latest, late, steps_forward = events[0]["time"], 0, 0
    for previous, event in itertools.pairwise(events):
        steps_forward += event["time"] > previous["time"]
        if event["time"] < latest:
            late += 1
            assert latest - event["time"] <= MINUTE_MS, event
        latest = max(latest, event["time"])
    assert steps_forward / N > 0.95
    assert 0.01 <= late / N <= 0.03
    hours = (latest - events[0]["time"]) / 3_600_000
    assert 2 < hours < 4, "20,000 events span a few hours of event time"


def test_without_late_fraction_times_never_go_back():
    times = [e["time"] for e in fraud.generate(5000, seed=1, late_fraction=0.0)]
    assert times == sorted(times)


def test_fraud_turns_from_big_bursts_to_small_payments_at_many_merchants_at_drift_at():
    events = list(fraud.generate(12_000, seed=5, drift_at=4000))
    before = [e for e in events[:4000] if e["is_fraud"]]
    after = [e for e in events[4000:] if e["is_fraud"]]
    assert all(e["amount"] <= 5.0 for e in after), "card testing from the drift point on"
    assert sum(e["amount"] for e in before) / len(before) > 100
    merchants = distinct_merchants_in_last_hour(events)
    fraud_before = [merchants[i] for i, e in enumerate(events[:4000]) if e["is_fraud"]]
    fraud_after = [merchants[i] for i, e in enumerate(events) if i >= 4000 and e["is_fraud"]]
    assert mean(fraud_after) > 1.5 * mean(fraud_before)


def distinct_merchants_in_last_hour(events: list[dict[str, Any]]) -> list[int]:
    seen: dict[str, list[tuple[int, str]]] = defaultdict(list)
    distinct = []
    for event in events:
        history = seen[event["card"]]
        history.append((event["time"], event["merchant"]))
        start = event["time"] - 60 * MINUTE_MS
        distinct.append(len({merchant for time, merchant in history if time >= start}))
    return distinct


def mean(values: list[int]) -> float:
    return sum(values) / len(values)


def test_the_cards_recent_count_finds_bursts_far_better_than_the_amount(events):
    """Before the drift, flagging a payment after two or more of the card's payments in the
    previous 10 minutes beats the best amount threshold by a wide F1 margin."""
    before = events[: N // 2]
    labels = [e["is_fraud"] for e in before]
    counts = recent_counts(before, 10 * MINUTE_MS)
    history_f1 = f1([count >= 2 for count in counts], labels)
    amount_f1 = best_threshold_f1([e["amount"] for e in before], labels)
    assert history_f1 > 0.6
    assert history_f1 > amount_f1 + 0.25, (history_f1, amount_f1)


def test_fraud_source_replays_the_generator_with_its_options():
    assert list(iter_events("fraud:300:seed=3")) == list(fraud.generate(300, seed=3))
    later = 1_767_236_400_000  # after a history of fraud.frame(20000) (examples/fraud.py)
    assert min(e["time"] for e in iter_events(f"fraud:300:start_ms={later}")) >= later
    assert len(list(iter_events("fraud:300", rows=10))) == 10
    assert source_length("fraud:50000:seed=7") == 50_000
    with pytest.raises(SourceError, match="fraud:N:seed=S"):
        iter_events("fraud:300:colour=red")
    with pytest.raises(SourceError, match="late_fraction"):
        iter_events("fraud:300:late_fraction=2")
