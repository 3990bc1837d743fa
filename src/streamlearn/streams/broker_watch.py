"""The broker's reachability as one line when it is lost and one when it is back.

librdkafka reports every failed connection attempt of every client (a line per attempt,
hundreds a minute during an outage). The worker keeps its state and waits; what an operator
needs is when the outage started, that the worker is waiting, and when (and after how long)
it ended. So the clients' ``error_cb`` and ``stats_cb`` feed this watch: a failed
connection, or even "all brokers down", only makes an outage suspected; the next statistics
report (each second, emitted after the error) confirms it (no broker ``UP``) or clears it
(one connection refused while the others work, or a broker back within a second, is not
an outage: both were seen right after start-ups and restarts); a report with a broker
``UP`` ends it. While it lasts librdkafka's own log lines are held back (``filter``).

>>> up = '{"brokers": {"127.0.0.1:9092/1": {"nodeid": 1, "state": "UP"}}}'
>>> down = '{"brokers": {"127.0.0.1:9092/1": {"nodeid": 1, "state": "DOWN"}}}'
>>> watch = BrokerWatch(clock=iter([1.0, 10.0, 22.5, 23.0]).__next__)
>>> watch.lost("GroupCoordinator: connection refused")
>>> watch.stats(up), watch.down     # the other connections work: no outage
(None, False)
>>> watch.lost("1/1 brokers are down")
>>> watch.stats(down), watch.down   # confirmed: the outage started at the error
(None, True)
>>> watch.stats(up)
12.5
>>> watch.down
False
>>> watch.lost("all brokers down")  # queued during the outage, delivered after it
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

SETTLE_S = 5.0
"""After the broker is back, errors are not a new outage for this long (librdkafka delivers
the ones it queued while it was down after the fact)."""


class BrokerWatch(logging.Filter):
    """Outage state of the worker's clients; also a logging filter for librdkafka's lines."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[bool, float], None] = lambda up, seconds: None) -> None:
        super().__init__()
        self.clock = clock
        self.on_change = on_change
        self.down_since: float | None = None
        self.back_at = -SETTLE_S
        self.suspected: tuple[float, str] | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def lost(self, reason: str) -> None:
        """A connection failed, or a client reaches no broker: an outage is suspected (the
        next statistics report decides), if none is under way."""
        if self.down_since is not None or self.suspected is not None:
            return
        now = self.clock()
        if now - self.back_at < SETTLE_S:
            return  # errors librdkafka queued during the outage, delivered after it ended
        self.suspected = (now, reason)

    def _start(self, since: float, reason: str) -> None:
        self.down_since, self.suspected = since, None
        log.error("lost the Kafka broker (%s); the worker keeps its state and waits for it",
                  reason)
        self.on_change(False, 0.0)

    def stats(self, report: str) -> float | None:
        """librdkafka's statistics (JSON): a broker UP ends the outage (returns its length)
        or clears a suspected one; none UP confirms a suspected one."""
        if self.down_since is None and self.suspected is None:
            return None
        try:
            brokers = orjson.loads(report).get("brokers", {})
        except orjson.JSONDecodeError:
            return None
        up = any(b.get("state") == "UP" and b.get("nodeid", -1) >= 0
                 for b in brokers.values())
        if self.suspected is not None:
            since, reason = self.suspected
            if up:
                self.suspected = None
            else:
                self._start(since, reason)
            return None
        if not up or self.down_since is None:
            return None
        now = self.clock()
        seconds = now - self.down_since
        self.down_since, self.back_at = None, now
        log.warning("the Kafka broker is back after %.1f s; resuming", seconds)
        self.on_change(True, seconds)
        return seconds

    def filter(self, record: logging.LogRecord) -> bool:
        """Hold back librdkafka's connection failures (``FAIL``: the error callback reports
        them, as an outage) and, during an outage, all its lines."""
        if self.down_since is not None:
            return False
        return not record.getMessage().startswith("FAIL")
