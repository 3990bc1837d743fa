"""`streamlearn produce --labels-to`: which records go where, in what order, at what time.

A fake producer records each send with the time of a fake clock that only moves when the
code sleeps, so the schedule is checked exactly and the tests take no time.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from streamlearn.cli import main
from streamlearn.tools.labels import (
    LabelError,
    LabelOptions,
    parse_delay,
    require_label,
    send_with_labels,
)
from streamlearn.tools.produce import ReplayOptions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


class FakeProducer:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sent: list[tuple[str, bytes | None, dict[str, Any], float]] = []
        self.flushed_after = -1

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> None:
        self.sent.append((topic, key, orjson.loads(value or b""), self.clock.now))

    def flush(self) -> None:
        self.flushed_after = len(self.sent)


def events(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"x": i, "y": i % 2 == 0, **extra} for i in range(n)]


def run(source: list[dict[str, Any]], delay: str = "0", rate: float = 0.0, seed: int = 0,
        time_field: str | None = None, **options: Any) -> tuple[FakeProducer, Any]:
    clock = Clock()
    producer = FakeProducer(clock)
    done = send_with_labels(
        source, producer, ReplayOptions(topic="ev", rate=rate, id_prefix="r", **options),
        LabelOptions("ev.labels", "y", parse_delay(delay), seed, time_field),
        clock=clock, sleep=clock.sleep,
    )
    return producer, done


def test_parse_delay() -> None:
    assert parse_delay("0") == (0.0, 0.0)
    assert parse_delay("1.5") == (1.5, 1.5)
    assert parse_delay(" 2 - 10 ") == (2.0, 10.0)
    for bad in ("", "-1", "3-1", "a-b", "1-2-3", "inf", "nan"):
        with pytest.raises(ValueError, match="label delay"):
            parse_delay(bad)


def test_fixed_delay_labels_interleave_with_paced_events() -> None:
    producer, done = run(events(4), delay="1.5", rate=1.0)
    shown = [(topic, key, round(at - 1000.0, 6)) for topic, key, _, at in producer.sent]
    assert shown == [
        ("ev", b"r-0", 0.0), ("ev", b"r-1", 1.0),
        ("ev.labels", b"r-0", 1.5), ("ev", b"r-2", 2.0),
        ("ev.labels", b"r-1", 2.5), ("ev", b"r-3", 3.0),
        ("ev.labels", b"r-2", 3.5), ("ev.labels", b"r-3", 4.5),
    ]
    assert (done.events, done.labels, done.unlabelled) == (4, 4, 0)
    assert producer.flushed_after == 8, "flushed once everything was sent"


def test_events_lose_their_label_and_labels_name_their_event() -> None:
    producer, _ = run(events(3))
    sent = {topic: [(key, value) for t, key, value, _ in producer.sent if t == topic]
            for topic in ("ev", "ev.labels")}
    assert sent["ev"] == [(f"r-{i}".encode(), {"x": i, "event_id": f"r-{i}"}) for i in range(3)]
    assert sent["ev.labels"] == [
        (f"r-{i}".encode(), {"event_id": f"r-{i}", "label": i % 2 == 0}) for i in range(3)
    ]
    # With no delay, each label follows its event at once.
    assert [t for t, *_ in producer.sent] == ["ev", "ev.labels"] * 3


def test_label_key_is_the_event_id_even_when_events_are_keyed_otherwise() -> None:
    source = [{"tx": f"t{i}", "card": "c7", "y": True} for i in range(2)]
    producer, _ = run(source, key_field="card", id_field="tx")
    assert [(t, key, value.get("event_id")) for t, key, value, _ in producer.sent] == [
        ("ev", b"c7", None), ("ev.labels", b"t0", "t0"),
        ("ev", b"c7", None), ("ev.labels", b"t1", "t1"),
    ]
    assert all("event_id" not in v for t, _, v, _ in producer.sent if t == "ev"), \
        "events that have an id field get no second one"


def test_random_delays_repeat_with_the_seed_and_labels_go_in_due_order() -> None:
    first, _ = run(events(50), delay="0-20", rate=10.0, seed=7)
    again, _ = run(events(50), delay="0-20", rate=10.0, seed=7)
    other, _ = run(events(50), delay="0-20", rate=10.0, seed=8)
    assert first.sent == again.sent
    assert first.sent != other.sent
    sent_at = {key: at for topic, key, _, at in first.sent if topic == "ev"}
    labels = [(key, at) for topic, key, _, at in first.sent if topic == "ev.labels"]
    assert sorted(key for key, _ in labels) == sorted(sent_at)
    delays = [at - sent_at[key] for key, at in labels]
    assert all(0 <= d <= 20 for d in delays) and len(set(delays)) == 50
    assert [at for _, at in labels] == sorted(at for _, at in labels)
    assert [k for k, _ in labels] != sorted(sent_at, key=sent_at.__getitem__), \
        "random delays reorder labels relative to their events"


def test_label_time_is_the_event_time_plus_its_delay() -> None:
    source = [{"t": 1_767_225_600_000, "y": 1}, {"t": "2026-01-01T00:00:10", "y": 0}]
    producer, _ = run(source, delay="2.5", time_field="t")
    labels = [value for topic, _, value, _ in producer.sent if topic == "ev.labels"]
    assert labels == [
        {"event_id": "r-0", "label": 1, "time": 1_767_225_602_500},
        {"event_id": "r-1", "label": 0, "time": 1_767_225_612_500},
    ]
    events_sent = [value for topic, _, value, _ in producer.sent if topic == "ev"]
    assert [e["t"] for e in events_sent] == [1_767_225_600_000, "2026-01-01T00:00:10"]


def test_label_time_with_random_delays_matches_the_wall_clock_delay() -> None:
    source = [{"t": 1_000_000 + i, "y": True} for i in range(20)]
    producer, _ = run(source, delay="1-3", seed=3, time_field="t")
    sent_at = {key: at for topic, key, _, at in producer.sent if topic == "ev"}
    for topic, key, value, at in producer.sent:
        if topic == "ev.labels":
            event_time = 1_000_000 + int(key.decode().split("-")[1])
            assert value["time"] == round(event_time + (at - sent_at[key]) * 1000)


def test_without_time_field_labels_carry_no_time() -> None:
    producer, _ = run(events(2, t=5), delay="1")
    assert all("time" not in v for topic, _, v, _ in producer.sent if topic == "ev.labels")


def test_first_event_without_the_label_field_is_an_error() -> None:
    with pytest.raises(LabelError, match=r"no label field 'y'.*fields: label, x.*--label-field"):
        require_label([{"x": 1, "label": True}], "y")
    assert list(require_label([{"y": 1}, {"x": 2}], "y")) == [{"y": 1}, {"x": 2}]
    assert list(require_label([], "y")) == []


def test_later_events_without_a_label_are_sent_and_counted() -> None:
    producer, done = run([{"x": 0, "y": True}, {"x": 1}, {"x": 2, "y": False}])
    assert (done.events, done.labels, done.unlabelled) == (3, 2, 1)
    assert [k for t, k, _, _ in producer.sent if t == "ev.labels"] == [b"r-0", b"r-2"]


def test_a_bad_event_time_names_the_event() -> None:
    with pytest.raises(LabelError, match=r"event 'r-1'.*not epoch milliseconds or ISO-8601"):
        run([{"t": 1, "y": 1}, {"t": "yesterday", "y": 1}], time_field="t")


def test_limit_counts_events_and_every_label_still_comes() -> None:
    producer, done = run(events(10), delay="5", limit=3)
    assert (done.events, done.labels) == (3, 3)
    assert [t for t, *_ in producer.sent] == ["ev"] * 3 + ["ev.labels"] * 3


# -- the command line refuses bad combinations before it reaches any broker ------------------

# An unreachable external broker with a short wait: a check that came too late would fail
# on the broker instead, naming it.
NO_BROKER = {"STREAMLEARN_BOOTSTRAP": "127.0.0.1:1", "STREAMLEARN_BROKER_TIMEOUT": "0.5"}


def test_cli_label_delay_needs_labels_to() -> None:
    result = CliRunner().invoke(main, ["produce", "river:Phishing", "--topic", "t",
                                       "--label-delay", "3"], env=NO_BROKER)
    assert result.exit_code == 1
    assert "--label-delay and --time-field go with --labels-to" in result.output


def test_cli_bad_label_delay_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["produce", "river:Phishing", "--topic", "t",
                                       "--labels-to", "t.labels", "--label-delay", "5-1"],
                                env=NO_BROKER)
    assert result.exit_code == 2
    assert "--label-delay" in result.output and "A-B" in result.output


def test_cli_events_without_the_label_fail_before_any_broker(tmp_path) -> None:
    (tmp_path / "events.csv").write_text("user,amount\na,1.5\n")
    result = CliRunner().invoke(main, ["produce", str(tmp_path / "events.csv"), "--topic", "t",
                                       "--labels-to", "t.labels"], env=NO_BROKER)
    assert result.exit_code == 1
    assert "no label field 'label'" in result.output and "127.0.0.1:1" not in result.output


def test_cli_help_documents_labels() -> None:
    result = CliRunner().invoke(main, ["produce", "--help"])
    assert result.exit_code == 0
    for option in ("--labels-to", "--label-delay", "--seed", "--time-field", "--event-id-field"):
        assert option in result.output
