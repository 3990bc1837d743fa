"""The broker's reachability as one line when it is lost and one when it is back.

librdkafka reports every failed connection attempt of every client (a line per attempt,
hundreds a minute during an outage). The worker keeps its state and waits; what an operator
needs is when the outage started, that the worker is waiting, and when (and after how long)
it ended. So the clients' ``error_cb`` and ``stats_cb`` feed this watch. A failed
connection, or even "all brokers down", only makes an outage suspected. Each client's
statistics report (each second) says whether it has a broker ``UP``:

- the outage is confirmed, from the error on, once every client has reported since the
  error and none has a broker up. A client that has not reported 1.5 s after the error is
  not being polled (the worker may be waiting on another client): it has no say; nor has
  a client silent for 3 s;
- it is cleared when a client reports a broker up more than a report interval after the
  error (one connection refused while the others work, or a broker back within a second,
  is not an outage: both were seen right after start-ups and restarts). A report just
  after the error may be from a client that has not yet noticed the broker died;
- a report with a broker ``UP`` ends a confirmed outage;
- a client whose report goes from a broker ``UP`` to none makes an outage suspected too
  (librdkafka reports a repeated error once, so an error alone can be missed).

Each report counts at the time librdkafka made it (its ``ts``, the same monotonic clock),
not when a poll delivered it: a client not polled for seconds delivers reports made before
the broker died, and their ``UP`` is old news.

While it lasts librdkafka's own log lines are held back (``filter``); while one is
suspected or under way the worker's own warnings about waiting are too (``quiet``).

>>> def report(client, state):
...     return ('{"name": "%s", "brokers": {"127.0.0.1:9092/1": {"nodeid": 1, "state": "%s"}}}'
...             % (client, state))
>>> watch = BrokerWatch(clock=iter([0.0, 0.1, 1.0, 1.1, 2.5, 10.0, 10.2, 10.3, 11.0, 23.0,
...                                 24.0, 39.0, 40.0, 40.5, 41.5]).__next__)
>>> watch.stats(report("consumer", "UP")), watch.stats(report("producer", "UP"))
(None, None)
>>> watch.lost("GroupCoordinator: connection refused")                  # at 1.0
>>> watch.stats(report("consumer", "UP")), watch.down    # too soon to tell
(None, False)
>>> watch.stats(report("producer", "UP")), watch.suspected  # 1.5 s later: not an outage
(None, None)
>>> watch.lost("1/1 brokers are down")                                  # at 10.0
>>> watch.stats(report("producer", "UP")), watch.down    # has not noticed yet
(None, False)
>>> watch.stats(report("consumer", "DOWN")), watch.down  # the producer has not told since
(None, False)
>>> watch.stats(report("producer", "DOWN")), watch.down  # confirmed from the error on
(None, True)
>>> watch.stats(report("consumer", "UP"))
13.0
>>> watch.lost("all brokers down")  # queued during the outage, delivered after it
>>> watch.down
False
>>> watch.stats(report("consumer", "UP"))                               # at 39.0
>>> watch.lost("1/1 brokers are down")                                  # at 40.0
>>> watch.stats(report("producer", "DOWN")), watch.down  # the consumer may still tell
(None, False)
>>> watch.stats(report("producer", "DOWN")), watch.down  # it is not polled: no say
(None, True)

A report made before the error but delivered after it (``ts`` in µs) does not clear it:

>>> watch = BrokerWatch(clock=lambda: 100.0)
>>> watch.lost("1/1 brokers are down")
>>> late = '{"name": "c", "ts": 99000000, "brokers": {"b/1": {"nodeid": 1, "state": "UP"}}}'
>>> watch.stats(late), watch.suspected
(None, (100.0, '1/1 brokers are down'))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson
from confluent_kafka import KafkaError, KafkaException

from streamlearn.config import Settings
from streamlearn.kafka.security import failure_hint
from streamlearn.monitoring.views import BrokerMetrics

__all__ = ["BROKER_LOST", "BrokerWatch", "ClientEvents"]

log = logging.getLogger(__name__)

SETTLE_S = 5.0
"""After the broker is back, errors are not a new outage for this long (librdkafka delivers
the ones it queued while it was down after the fact)."""

CLEAR_S = 1.5
"""A broker up in a report this long after the error clears a suspected outage: more than
the report interval (1 s), so the client has had time to notice a dead connection. A client
that has not reported since the error by then is not being polled (the hot path may be
waiting on the producer): it has no say."""

STALE_S = 3.0
"""A client that has not reported for this long (not polled) has no say."""


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
        self.reports: dict[str, tuple[float, bool]] = {}  # client -> (reported at, broker up)

    @property
    def down(self) -> bool:
        return self.down_since is not None

    @property
    def quiet(self) -> bool:
        """An outage is under way or suspected: waiting is expected, not worth a warning."""
        return self.down_since is not None or self.suspected is not None

    def lost(self, reason: str) -> None:
        """A connection failed, or a client reaches no broker: an outage is suspected (the
        clients' next statistics reports decide), if none is under way."""
        self._suspect(self.clock(), reason)

    def _suspect(self, now: float, reason: str) -> None:
        if self.down_since is not None or self.suspected is not None:
            return
        if now - self.back_at < SETTLE_S:
            return  # errors librdkafka queued during the outage, delivered after it ended
        self.suspected = (now, reason)

    def stats(self, report: str) -> float | None:
        """One client's librdkafka statistics (JSON): decides a suspected outage (see the
        module's doc); a broker UP ends a confirmed one (returns its length in seconds)."""
        try:
            stats = orjson.loads(report)
        except orjson.JSONDecodeError:
            return None
        up = any(b.get("state") == "UP" and b.get("nodeid", -1) >= 0
                 for b in stats.get("brokers", {}).values())
        ts = stats.get("ts")
        now = ts / 1e6 if isinstance(ts, int) else self.clock()
        client = stats.get("name", "")
        before = self.reports.get(client)
        self.reports[client] = (now, up)
        if before is not None and before[1] and not up:
            self._suspect(now, f"{client} reaches no broker")
        if self.suspected is not None:
            self._decide(now, up)
            return None
        if not up or self.down_since is None:
            return None
        seconds = now - self.down_since
        self.down_since, self.back_at = None, now
        log.warning("the Kafka broker is back after %.1f s; resuming", seconds)
        self.on_change(True, seconds)
        return seconds

    def _decide(self, now: float, up: bool) -> None:
        assert self.suspected is not None
        since, reason = self.suspected
        if up:
            if now - since >= CLEAR_S:
                self.suspected = None
            return
        settled = now - since >= CLEAR_S
        say = [(at, client_up) for at, client_up in self.reports.values()
               if now - at < STALE_S and (at >= since or not settled)]
        if all(at >= since and not client_up for at, client_up in say):
            self.down_since, self.suspected = since, None
            log.error("lost the Kafka broker (%s); the worker keeps its state and waits for it",
                      reason)
            self.on_change(False, 0.0)

    def filter(self, record: logging.LogRecord) -> bool:
        """Hold back librdkafka's connection failures (``FAIL``: the error callback reports
        them, as an outage) and, during an outage, all its lines."""
        if self.down_since is not None:
            return False
        return not record.getMessage().startswith("FAIL")


BROKER_LOST = (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE)


class ClientEvents:
    """The hot path's librdkafka callbacks: errors (losing the broker is an outage, waited
    out; a refused login names the setting to fix) and statistics (broker health, and the
    consumer lag of each input partition this worker owns)."""

    def __init__(self, watch: BrokerWatch, settings: Settings, metrics: BrokerMetrics,
                 owned: Callable[[], set[tuple[str, int]]]) -> None:
        self.watch, self.settings, self.metrics, self.owned = watch, settings, metrics, owned

    def error(self, error: KafkaError) -> None:
        if error.code() in BROKER_LOST:
            self.watch.lost(error.str())
        elif not self.watch.quiet:
            log.warning("kafka: %s", failure_hint(self.settings, error.str()) or error)

    def consume_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        self.error(error)

    def stats(self, raw: str) -> None:
        """librdkafka's statistics (each second)."""
        self.watch.stats(raw)
        try:
            topics = orjson.loads(raw).get("topics", {})
        except orjson.JSONDecodeError:
            return
        for topic, info in topics.items():
            for partition, stats in info.get("partitions", {}).items():
                lag = stats.get("consumer_lag", -1)
                if lag >= 0 and (topic, int(partition)) in self.owned():
                    self.metrics.set_lag(topic, int(partition), lag)
