"""What the soak benchmark runs next to the worker: a paced feed, a prediction reader, and
the probes it samples (consumer lag from the group's committed offsets, RSS, CPU).

The feed and the reader are threads of the soak process. The feed stores each event's
send time (its record CreateTime) by index, and event ids end in that index, so the reader
matches each prediction to its event without a map of millions of ids; it keeps a
histogram of whole-millisecond latencies per window of send time, not the latencies.

>>> feed = PacedFeed("127.0.0.1:1", "t", "run-x", rate=10.0, seconds=2.0, horizon_ms=0)
>>> feed.capacity, feed.event_id(7), index_of("run-x-7")
(20, 'run-x-7', 7)
>>> horizon_index([5, 7, 9, 12, 15], horizon_ms=6), horizon_index([5, 7], horizon_ms=6)
(3, None)
"""

from __future__ import annotations

import os
import threading
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_LOG_APPEND_TIME, Consumer, Message
from confluent_kafka import TopicPartition as ConfluentPartition
from kafka import KafkaAdminClient, TopicPartition

from benchmarks.kafka_io import PACE_TICK_S, OffsetProbe, _paced_producer
from benchmarks.process import ContenderProcess
from benchmarks.workloads import EVENT_ID_FIELD, FRAUD_SEED
from streamlearn.datasets import fraud

__all__ = [
    "GroupProbe",
    "PacedFeed",
    "PredictionReader",
    "Sample",
    "horizon_index",
    "index_of",
    "rss_mb",
]

_TICKS = os.sysconf("SC_CLK_TCK")
_HALT_CHECK_EVERY = 1000
"""Events between two looks at the feed's stop flag."""


def horizon_index(times_ms: Iterable[float], horizon_ms: float) -> int | None:
    """The first event whose time is a full ``horizon_ms`` after the first event's: from
    there on, the derived features' longest window holds a full span of events (until
    then each event finds more state than the last). None if no event is that late."""
    first = None
    for index, t in enumerate(times_ms):
        first = t if first is None else first
        if t - first >= horizon_ms:
            return index
    return None


def index_of(event_id: str) -> int:
    """The event's position in the feed: the number its id ends with."""
    return int(event_id.rpartition("-")[2])


class PacedFeed(threading.Thread):
    """``rate`` events/s of the fraud stream for ``seconds``, keyed by card, CreateTime =
    send time; paced as the harness's latency phase paces (``kafka_io.PACE_TICK_S``)."""

    def __init__(self, bootstrap: str, topic: str, prefix: str, rate: float,
                 seconds: float, horizon_ms: float) -> None:
        super().__init__(name="soak-feed", daemon=True)
        self.bootstrap, self.topic, self.prefix, self.rate = bootstrap, topic, prefix, rate
        self.capacity = max(1, round(rate * seconds))
        self.sent_ms = array("q", bytes(8 * self.capacity))
        """Send time (epoch ms, the record's CreateTime) of event ``i`` at index ``i``."""
        self.produced = 0
        self.filled = horizon_index(
            (p[fraud.TIME_FIELD] for p in self._events()), horizon_ms)
        """The first event sent into full feature windows (``horizon_index``)."""
        self.t0 = self.t0_ms = 0.0
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def _events(self) -> Iterator[dict[str, Any]]:
        return fraud.generate(self.capacity, seed=FRAUD_SEED)

    def event_id(self, index: int) -> str:
        return f"{self.prefix}-{index}"

    def start(self) -> None:
        self.t0, self.t0_ms = time.perf_counter(), time.time() * 1000
        super().start()

    def run(self) -> None:
        try:
            self._send()
        except BaseException as exc:  # the sampler sees it and stops the run
            self.error = exc

    def _send(self) -> None:
        topic, rate, t0, sent_ms = self.topic, self.rate, self.t0, self.sent_ms
        with _paced_producer(self.bootstrap, topic) as producer:
            for n, payment in enumerate(self._events()):
                if n % _HALT_CHECK_EVERY == 0 and self.halt.is_set():
                    return
                delay = t0 + n / rate - time.perf_counter()
                if delay > PACE_TICK_S:
                    time.sleep(delay)
                payment[fraud.EVENT_ID_FIELD] = self.event_id(n)
                value, key = orjson.dumps(payment), str(payment[fraud.KEY_FIELD]).encode()
                now = int(time.time() * 1000)
                sent_ms[n] = now  # before the send: its prediction can only come later
                while True:
                    try:
                        producer.produce(topic, value=value, key=key, timestamp=now)
                        break
                    except BufferError:  # librdkafka's queue is full: let it drain
                        producer.poll(0.05)
                producer.poll(0)
                self.produced = n + 1


class PredictionReader(threading.Thread):
    """Reads the worker's predictions as they come; per window of ``step_s`` of send time, a
    histogram of latency = prediction LogAppendTime - event CreateTime, whole ms."""

    def __init__(self, bootstrap: str, topic: str, feed: PacedFeed, step_s: float) -> None:
        super().__init__(name="soak-reader", daemon=True)
        self.bootstrap, self.topic, self.feed = bootstrap, topic, feed
        self.step_ms = step_s * 1000
        self.windows: defaultdict[int, Counter[int]] = defaultdict(Counter)
        self.seen = bytearray(feed.capacity)
        self.answered = 0
        """Events with at least one prediction."""
        self.duplicates = 0
        self.error: BaseException | None = None
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def window(self, index: int) -> Counter[int]:
        """A copy of window ``index``'s histogram (latency ms -> events)."""
        with self.lock:
            return Counter(self.windows.get(index, {}))

    def run(self) -> None:
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": f"{self.topic}.soak-reader",  # assigned, never committed
            "enable.auto.commit": False,
        })
        try:
            consumer.assign([ConfluentPartition(self.topic, 0, OFFSET_BEGINNING)])
            while not self.halt.is_set():
                batch = consumer.consume(1000, timeout=0.2)
                with self.lock:
                    for message in batch:
                        self._note(message)
        except BaseException as exc:  # the sampler sees it and stops the run
            self.error = exc
        finally:
            consumer.close()

    def _note(self, message: Message) -> None:
        if message.error():
            raise RuntimeError(f"reading {self.topic}: {message.error()}")
        kind, stamp = message.timestamp()
        if kind != TIMESTAMP_LOG_APPEND_TIME:
            # Latency is measured to the broker's clock; CreateTime would be the worker's.
            raise RuntimeError(f"{self.topic} is not a LogAppendTime topic (type {kind})")
        index = index_of(orjson.loads(message.value() or b"{}")[EVENT_ID_FIELD])
        if self.seen[index]:
            self.duplicates += 1
            return
        self.seen[index] = 1
        self.answered += 1
        sent = self.feed.sent_ms[index]
        self.windows[int((sent - self.feed.t0_ms) // self.step_ms)][stamp - sent] += 1


@dataclass(frozen=True)
class Sample:
    """One look at the run, ``t`` seconds after the feed started."""

    t: float
    produced: int
    """Events the feed has sent."""
    end: int
    """The input topic's end offset: events the broker has."""
    committed: int
    """The worker group's committed offset (the next event it will read)."""
    predictions: int
    """The predictions topic's end offset."""
    rss_mb: float | None
    cpu_s: float
    """The worker's user + system CPU so far, all threads."""
    driver_cpu_s: float
    """This process's (the feed's and the reader's) CPU so far."""
    machine_busy_s: float
    """CPU time the whole machine spent not idle so far, all CPUs (``/proc/stat``)."""

    @property
    def lag(self) -> int:
        """Consumer lag: events on the broker the worker has not committed past."""
        return self.end - self.committed


def machine_busy_s() -> float:
    """Seconds of CPU, summed over CPUs, the machine spent neither idle nor waiting on I/O."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    # guest time is already counted in user time
    return (sum(fields[:8]) - idle) / _TICKS


def rss_mb(pid: int) -> float | None:
    """The process's resident set now (VmRSS), MiB; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


class GroupProbe:
    """Offsets of one worker group on a one-partition input, and whether it has joined."""

    def __init__(self, bootstrap: str, topic: str, output_topic: str, group: str) -> None:
        self.topic, self.output_topic, self.group = topic, output_topic, group
        self.partition = TopicPartition(topic, 0)
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.ends = OffsetProbe(bootstrap)

    def committed(self) -> int:
        offsets = self.admin.list_group_offsets({self.group: [self.partition]})[self.group]
        found = offsets.get(self.partition)
        return max(0, found.offset) if found is not None else 0

    def joined(self) -> bool:
        """The group is stable with a member: the worker has its partition."""
        described = self.admin.describe_groups([self.group]).get(self.group, {})
        return described.get("group_state") == "Stable" and bool(described.get("members"))

    def sample(self, t: float, produced: int, proc: ContenderProcess) -> Sample:
        return Sample(t, produced, self.ends.end(self.topic), self.committed(),
                      self.ends.end(self.output_topic), rss_mb(proc.pid), proc.cpu_seconds(),
                      time.process_time(), machine_busy_s())

    def close(self) -> None:
        self.ends.close()
        self.admin.close()
