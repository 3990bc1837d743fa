"""What the soak benchmark runs next to the worker: the event stream and its feeds (a backlog
producer for the warm-up and the maximum-rate bursts, a paced feed for the soak), a
prediction reader, and the probes it samples (consumer lag from the group's committed
offsets, RSS, CPU).

Every phase sends the next events of one stream (``fraud.generate``, seed 42), so event
time runs on and the worker's feature state stays what the warm-up built. The paced feed
and the reader are threads of the soak process. The feed stores each event's send time (its
record CreateTime) by index, and event ids end in that index, so the reader matches each
prediction to its event without a map of millions of ids; it keeps a histogram of
whole-millisecond latencies per window of send time, not the latencies.

>>> stream = Stream(seed=42)
>>> first = [p["time"] for p in stream.events(0, 5)]
>>> [p["time"] for p in stream.events(3, 2)] == first[3:]
True
>>> feed = PacedFeed("127.0.0.1:1", "t", "run-x", rate=10.0, seconds=2.0, stream=stream,
...                  skip=1000)
>>> feed.capacity, feed.event_id(7), index_of("run-x-7"), feed.drift_at
(20, 'run-x-7', 7, 1010)
>>> horizon_index([5, 7, 9, 12, 15], horizon_ms=6), horizon_index([5, 7], horizon_ms=6)
(3, None)
"""

from __future__ import annotations

import itertools
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
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, Message, Producer
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
    "Progress",
    "Sample",
    "Stream",
    "horizon_index",
    "index_of",
    "output_stamps",
    "produce_backlog",
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


class Stream:
    """The soak's one stream of fraud payments: event ``i`` is the same whichever phase
    sends it. The generator's drift (bursts to card testing) comes at ``drift_at``, which
    the soak sets to the middle of its paced part once it knows the rate; before that index
    the stream does not depend on it (``fraud.generate``)."""

    NO_DRIFT = 2**62

    def __init__(self, seed: int = FRAUD_SEED) -> None:
        self.seed = seed

    def events(self, start: int, n: int, drift_at: int = NO_DRIFT
               ) -> Iterator[dict[str, Any]]:
        """Payments ``start`` .. ``start + n - 1`` (generating the ones before costs ~5 µs
        each)."""
        payments = fraud.generate(self.NO_DRIFT, seed=self.seed, drift_at=drift_at)
        return itertools.islice(payments, start, start + n)

    def warm_index(self, span_ms: float) -> int | None:
        """The first event ``span_ms`` of event time after the first (``horizon_index``)."""
        return horizon_index((p[fraud.TIME_FIELD] for p in self.events(0, self.NO_DRIFT)),
                             span_ms)


def encode(payment: dict[str, Any], event_id: str) -> tuple[bytes, bytes]:
    """(record key: the card, JSON value) of a payment under ``event_id``."""
    payment[fraud.EVENT_ID_FIELD] = event_id
    return str(payment[fraud.KEY_FIELD]).encode(), orjson.dumps(payment)


def produce_backlog(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Send as fast as librdkafka allows (CreateTime = now) and wait for every ack; returns
    how many. ~1 s per 100,000 events here, against ~9 s with kafka-python: the producer
    competes with the worker for the CPU only briefly."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                         "queue.buffering.max.messages": 1_000_000})
    sent = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        if sent % 10_000 == 0:
            producer.poll(0)
    if producer.flush(60):
        raise RuntimeError(f"could not deliver the backlog to {topic}")
    return sent


def output_stamps(bootstrap: str, topic: str, start: int, end: int,
                  timeout: float = 60.0) -> list[int]:
    """The record timestamps (LogAppendTime, ms) of offsets ``start`` .. ``end - 1``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}.soak-stamps",
                         "enable.auto.commit": False})
    stamps: list[int] = []
    try:
        consumer.assign([ConfluentPartition(topic, 0, start)])
        deadline = time.monotonic() + timeout
        while len(stamps) < end - start:
            if time.monotonic() > deadline:
                raise RuntimeError(f"read {len(stamps)}/{end - start} records of {topic}")
            for message in consumer.consume(10_000, timeout=0.5):
                if message.error():
                    raise RuntimeError(f"reading {topic}: {message.error()}")
                if (message.offset() or 0) < end:
                    stamps.append(message.timestamp()[1])
    finally:
        consumer.close()
    return stamps


class PacedFeed(threading.Thread):
    """``rate`` events/s of the stream for ``seconds``, from its event ``skip`` on (the
    warm-up and the maximum-rate bursts sent the ones before), keyed by card, CreateTime =
    send time; paced as the harness's latency phase paces (``kafka_io.PACE_TICK_S``). The
    stream's drift comes halfway through, unless ``drift=False``."""

    def __init__(self, bootstrap: str, topic: str, prefix: str, rate: float,
                 seconds: float, stream: Stream, skip: int = 0, drift: bool = True) -> None:
        super().__init__(name="soak-feed", daemon=True)
        self.bootstrap, self.topic, self.prefix, self.rate = bootstrap, topic, prefix, rate
        self.capacity = max(1, round(rate * seconds))
        self.sent_ms = array("q", bytes(8 * self.capacity))
        """Send time (epoch ms, the record's CreateTime) of event ``i`` at index ``i``."""
        self.produced = 0
        self.drift_at = skip + self.capacity // 2 if drift else Stream.NO_DRIFT
        """The stream's index of the first event after the drift."""
        self.stream, self.skip = stream, skip
        self.t0 = self.t0_ms = 0.0
        self.error: BaseException | None = None
        self.halt = threading.Event()
        self._payments: Iterator[dict[str, Any]] | None = None

    def prepare(self) -> None:
        """Generate (and drop) the events before ``skip`` now, not once the clock runs."""
        payments = self.stream.events(self.skip, self.capacity, self.drift_at)
        first = next(payments, None)
        self._payments = payments if first is None else itertools.chain([first], payments)

    def _events(self) -> Iterator[dict[str, Any]]:
        if self._payments is None:
            self.prepare()
        assert self._payments is not None
        return self._payments

    def event_id(self, index: int) -> str:
        return f"{self.prefix}-{index}"

    def start(self) -> None:
        if self._payments is None:
            self.prepare()
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
    """Reads the worker's predictions as they come, from offset ``start`` (the earlier ones
    answer the warm-up and the bursts); per window of ``step_s`` of send time, a histogram
    of latency = prediction LogAppendTime - event CreateTime, whole ms."""

    def __init__(self, bootstrap: str, topic: str, feed: PacedFeed, step_s: float,
                 start: int = 0) -> None:
        super().__init__(name="soak-reader", daemon=True)
        self.bootstrap, self.topic, self.feed, self.start_offset = bootstrap, topic, feed, start
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
            consumer.assign([ConfluentPartition(self.topic, 0, self.start_offset)])
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
    """CPU time the whole machine spent busy so far, niced processes left out, all CPUs
    (``/proc/stat``)."""

    @property
    def lag(self) -> int:
        """Consumer lag: events on the broker the worker has not committed past."""
        return self.end - self.committed


@dataclass(frozen=True)
class Progress:
    """One look at the worker during the warm-up or a maximum-rate burst."""

    t: float
    """Seconds since the phase began."""
    outputs: int
    """Predictions so far (the output topic's end offset)."""
    cpu_s: float
    rss_mb: float | None


def machine_busy_s() -> float:
    """Seconds of CPU, summed over CPUs, the machine spent neither idle, nor waiting on I/O,
    nor in niced processes (which give way to the soak's: a shared machine's background
    jobs often run niced)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    # guest time is already counted in user time
    return (sum(fields[:8]) - idle - fields[1]) / _TICKS


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

    def progress(self, t: float, proc: ContenderProcess) -> Progress:
        return Progress(t, self.ends.end(self.output_topic), proc.cpu_seconds(),
                        rss_mb(proc.pid))

    def sample(self, t: float, produced: int, proc: ContenderProcess) -> Sample:
        return Sample(t, produced, self.ends.end(self.topic), self.committed(),
                      self.ends.end(self.output_topic), rss_mb(proc.pid), proc.cpu_seconds(),
                      time.process_time(), machine_busy_s())

    def close(self) -> None:
        self.ends.close()
        self.admin.close()
