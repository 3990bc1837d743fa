"""The broker's reachability as one line when it is lost and one when it is back.

librdkafka reports every failed connection attempt of every client (a line per attempt,
hundreds a minute during an outage). The worker keeps its state and waits; what an operator
needs is when the outage started, that the worker is waiting, and when (and after how long)
it ended. So the clients' ``error_cb`` and ``stats_cb`` feed this watch: a transport error
or "all brokers down" starts an outage, a statistics report with a broker ``UP`` ends it,
and while it lasts librdkafka's own log lines are held back (``filter``).

>>> watch = BrokerWatch(clock=iter([0.0, 12.5]).__next__)
>>> watch.lost("all brokers down")
>>> watch.down
True
>>> watch.stats('{"brokers": {"127.0.0.1:9092/1": {"nodeid": 1, "state": "UP"}}}')
12.5
>>> watch.down
False
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson

__all__ = ["BrokerWatch"]

log = logging.getLogger(__name__)


class BrokerWatch(logging.Filter):
    """Outage state of the worker's clients; also a logging filter for librdkafka's lines."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[bool, float], None] = lambda up, seconds: None) -> None:
        super().__init__()
        self.clock = clock
        self.on_change = on_change
        self.down_since: float | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def lost(self, reason: str) -> None:
        """A client could not reach any broker: the outage starts (if it had not)."""
        if self.down_since is not None:
            return
        self.down_since = self.clock()
        log.error("lost the Kafka broker (%s); the worker keeps its state and waits for it",
                  reason)
        self.on_change(False, 0.0)

    def stats(self, report: str) -> float | None:
        """librdkafka's statistics (JSON): a broker UP ends the outage; returns its length."""
        if self.down_since is None:
            return None
        try:
            brokers = orjson.loads(report).get("brokers", {})
        except orjson.JSONDecodeError:
            return None
        if not any(b.get("state") == "UP" and b.get("nodeid", -1) >= 0
                   for b in brokers.values()):
            return None
        seconds = self.clock() - self.down_since
        self.down_since = None
        log.warning("the Kafka broker is back after %.1f s; resuming", seconds)
        self.on_change(True, seconds)
        return seconds

    def filter(self, record: logging.LogRecord) -> bool:
        """Hold back librdkafka's per-attempt lines while an outage is already reported."""
        return self.down_since is None
