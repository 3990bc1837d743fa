"""Which input partitions are read to their end, and when one counts as idle."""

from __future__ import annotations

from streamlearn.streams.catch_up import CatchUp


class Ends:
    """A consumer's cached (low, high) watermarks; (-1001, -1001) before the first fetch."""

    def __init__(self) -> None:
        self.ends: dict[tuple[str, int], tuple[int, int]] = {}

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        assert cached, "asking the broker on every step would cost a request each"
        return self.ends.get((tp.topic, tp.partition), (-1001, -1001))


def test_an_input_is_idle_only_after_being_read_to_its_end_for_idle_after():
    now = [0.0]
    ends = Ends()
    idled: list[str] = []
    catch_up = CatchUp(ends, idle_after=1.0, clock=lambda: now[0], on_idle=idled.append)
    labels = ("p.labels", 0)
    catch_up.start(labels, None)
    assert not catch_up.idle(labels), "no fetch yet: the end is unknown"
    ends.ends[labels] = (0, 5)
    catch_up.read(labels, 3)
    assert not catch_up.caught_up(labels) and not catch_up.idle(labels)
    catch_up.read(labels, 5)
    assert catch_up.caught_up(labels) and not catch_up.idle(labels)
    now[0] = 0.9
    assert not catch_up.idle(labels)
    now[0] = 1.0
    assert catch_up.idle(labels) and catch_up.idle(labels) and idled == ["p.labels"]
    ends.ends[labels] = (0, 6)  # a new label: not idle until it is read and time passes
    assert not catch_up.idle(labels)
    catch_up.read(labels, 6)
    now[0] = 1.5
    assert not catch_up.idle(labels)
    now[0] = 2.5
    assert catch_up.idle(labels) and idled == ["p.labels", "p.labels"]


def test_an_empty_partition_read_from_the_start_is_caught_up():
    now = [0.0]
    ends = Ends()
    catch_up = CatchUp(ends, idle_after=0.5, clock=lambda: now[0])
    events = ("p", 1)
    catch_up.start(events, None)
    ends.ends[events] = (0, 0)
    assert catch_up.caught_up(events) and not catch_up.idle(events)
    now[0] = 0.5
    assert catch_up.idle(events)
    catch_up.forget(events)
    assert not catch_up.caught_up(events)
