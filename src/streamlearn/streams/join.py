"""One partition of the label join, between Kafka records and :class:`LabelJoin`, in event time.

It reads partition *q* of ``<name>.served`` and of ``<name>.labels`` (co-partitioned: same
count, murmur2 on the event id) and writes each example to ``<name>.training``, whose single
partition is the learner's total order. What it makes of the records does not depend on how
fast either input is read (a backlog, a catch-up after a crash, real time all give the same):

- ``.served`` is written by the predictor of every events partition, so it is read through a
  :class:`~streamlearn.streams.merge.SourceMerge`: records come out in the order of their
  sources' merge times, each only once every source that is not idle has passed it;
- the two inputs are merged the same way: the join takes next the input whose next record has
  the lowest merge time (a served record first on a tie); while an input has nothing buffered
  and is not idle (``streams.catch_up``) it waits for it; a label's merge time is the running
  maximum of its partition's label times;
- its watermark is the lowest bound of the inputs that are not idle, so a silent labels
  partition does not hold back expiry: once it is idle the served records alone move time.

Each example carries the join's own source fields (``src`` = [q, n], n counting the records
the join has taken, and ``m``, its merge time), and the join writes watermark records to
``<name>.training``, so the learner orders the examples of all partitions the same way.

A label that is not valid JSON, lacks ``event_id`` or ``label``, or has the wrong type is a
dead letter with its reason, in its turn. Labels that rode inside their events arrive in the
served record and join at once.

Its state is checkpointed in ``<name>.state`` (partition *q*): the pending ids, the outcome
counts, the merge's state, and the offsets to read again from (the oldest record held but not
taken, on each input).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import orjson

from streamlearn.kafka.records import decode_label, encode_example, watermark_record
from streamlearn.monitoring.metrics import PipelineMetrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.spec.schema import BadEvent
from streamlearn.streams.dead_letters import dead_letter
from streamlearn.streams.label_join import LabelJoin
from streamlearn.streams.merge import NEVER, SourceMerge
from streamlearn.streams.messages import Emit, SourceMessage

__all__ = ["JoinProcessor"]

log = logging.getLogger(__name__)


class JoinProcessor:
    """The label join of one partition: served records and labels in, examples out."""

    def __init__(self, spec: Pipeline, partition: int, metrics: PipelineMetrics,
                 max_event_bytes: int) -> None:
        self.spec = spec
        self.partition = partition
        self.max_event_bytes = max_event_bytes
        self.join = LabelJoin(spec.label_ttl_ms, partition)
        self.label_type = spec.label_type
        self.served_topic, self.labels_topic = spec.served_topic, spec.labels_topic
        self.merge = SourceMerge(spec.partitions)
        self.stable_seq = len(spec.stages) == 1
        """A served record's sequence number is its event's offset (the same in every
        replay), so the merge drops a predictor's replayed copies by it. Behind a ``by``
        stage it is a position in that stage's merge, which a replay after an idle source
        may shift: copies are then left to the join, which knows the ids it holds."""
        self.labels: deque[tuple[float, int, SourceMessage, Any]] = deque()
        """Labels read, not yet taken: (merge time, offset, message, decoded or BadEvent)."""
        self.labels_next: int | None = None
        """Offset after the last label read."""
        self.labels_mark = NEVER
        """Running maximum of the label times read (the next label's merge time >= it)."""
        self.taken_mark = NEVER
        """The same, as of the last label taken (what a restart re-reads from)."""
        self.clock = NEVER
        """Merge time of the record taken last (examples carry it; never decreases)."""
        self.taken = 0
        """Records taken from both inputs: the sequence number of the examples."""
        self.sent_mark: tuple[float, bool] | None = None
        """The last watermark written to ``<name>.training``."""
        self.replay_until: int | None = None
        """Exactly-once, after a restore: records taken up to here had their examples
        committed before the crash; taking them again writes nothing."""
        self.checkpoint_id = 0
        self.checkpoint_offsets: dict[str, int] = {}
        self.checkpoint_taken = 0
        self.events_since_checkpoint = 0
        self.metrics = metrics.join(partition, self.served_topic)
        self._dead_letters = metrics.partitions.dead_letters

    # -- input ---------------------------------------------------------------------------

    def add(self, messages: list[SourceMessage]) -> None:
        """Records read from either input: held until their turn (:meth:`drain`)."""
        for message in messages:
            offset = message.offset() or 0
            if message.topic() == self.served_topic:
                record = orjson.loads(message.value() or b"{}")
                if not self.merge.mark(record, offset):
                    # A record of an older version lacks src and m: its own time, as read.
                    source, seq = record.pop("src", None) or (0, None)
                    m = record.pop("m", None)
                    self.merge.add(source, seq if self.stable_seq else None,
                                   record["event_time"] if m is None else m, offset, record)
            else:
                label: tuple[str, Any, float] | BadEvent
                try:
                    event_id, value, t = decode_label(message.value(), self.max_event_bytes,
                                                      self.label_type)
                except BadEvent as error:
                    label = error  # a dead letter in its turn; it moves no time
                else:
                    label = (event_id, value, message.timestamp()[1] if t is None else t)
                    if label[2] > self.labels_mark:
                        self.labels_mark = label[2]
                self.labels.append((self.labels_mark, offset, message, label))
                self.labels_next = offset + 1
        self.events_since_checkpoint += len(messages)

    def drain(self, emit: Emit, labels_idle: bool) -> None:
        """Take records from both inputs in merge-time order as far as both allow; then move
        the watermark to the lowest bound of the inputs that are not idle."""
        merge, labels = self.merge, self.labels
        delays: list[float] = []
        if self.replay_until is not None:
            emit = self._replaying(emit)
        while True:
            head = merge.peek()
            if labels:
                if head is None:
                    bound = merge.bound()
                    if bound is not None and bound <= labels[0][0]:
                        break  # the served record that may come next goes first
                    self._take_label(emit, delays)
                elif head[0] <= labels[0][0]:
                    self._take_served(merge.pop(), head[0], emit, delays)
                else:
                    self._take_label(emit, delays)
            elif head is not None and (labels_idle or head[0] <= self.labels_mark):
                self._take_served(merge.pop(), head[0], emit, delays)
            else:
                break
        bound = self.bound(labels_idle)
        if bound is not None:
            self.join.advance(bound)
        self._account(delays)
        if self.replay_until is not None and self.taken >= self.replay_until:
            log.info("partition %d: the label join replayed to record %d; writing again",
                     self.partition, self.replay_until)
            self.replay_until = None

    def _replaying(self, emit: Emit) -> Emit:
        """``emit`` for records taken after ``replay_until``; nothing before."""
        def gate(topic: str, value: bytes, key: bytes | None, *, headers: Any = None) -> None:
            if self.replay_until is None or self.taken > self.replay_until:
                emit(topic, value, key, headers=headers)
        return gate

    def bound(self, labels_idle: bool) -> float | None:
        """Lowest merge time either input can still give (None: both idle)."""
        bounds = [b for b in (self.merge.bound(),
                              None if labels_idle and not self.labels else
                              (self.labels[0][0] if self.labels else self.labels_mark))
                  if b is not None]
        return min(bounds) if bounds else None

    def watermark_due(self, labels_idle: bool) -> bytes | None:
        """The watermark record to write to ``<name>.training`` if it moved (None if not)."""
        bound = self.bound(labels_idle)
        mark = (self.clock if bound is None else max(bound, self.clock), bound is None)
        if (mark[0] == NEVER and not mark[1]) or mark == self.sent_mark:
            return None
        self.sent_mark = mark
        return watermark_record(self.partition, mark[0], idle=mark[1])

    def resume_mark(self) -> bytes:
        """The watermark record a restored join writes first: it is back and not idle (an
        idle mark written before it stopped would let the learner pass its examples)."""
        self.sent_mark = (self.clock, False)
        return watermark_record(self.partition, self.clock, idle=False)

    def _take_served(self, record: dict[str, Any], m: float, emit: Emit,
                     delays: list[float]) -> None:
        self._tick(m)
        event_id, t = str(record["event_id"]), record["event_time"]
        label = record.pop("label", None)
        examples = self.join.served(event_id, record, t)
        if label is not None:
            examples += self.join.label(event_id, label, t)
        self._emit(examples, emit, delays)

    def _take_label(self, emit: Emit, delays: list[float]) -> None:
        m, _, message, label = self.labels.popleft()
        self.taken_mark = m
        self._tick(m)
        if isinstance(label, BadEvent):
            dead_letter(self.spec, self._dead_letters, message, label, emit)
            return
        self._emit(self.join.label(*label), emit, delays)

    def _tick(self, m: float) -> None:
        self.taken += 1
        if m > self.clock:
            self.clock = m
        self.join.advance(self.clock)

    def _emit(self, examples: list[Any], emit: Emit, delays: list[float]) -> None:
        training = self.spec.training_topic
        for event_id, record, label, label_time in examples:
            delays.append(max(0.0, (label_time - record["event_time"]) / 1000))
            emit(training, encode_example(record, label, label_time,
                                          source=(self.partition, self.taken), m=self.clock),
                 event_id.encode())

    def _account(self, delays: list[float]) -> None:
        m = self.metrics
        for outcome, count in self.join.take_counts().items():
            if count:
                m.outcomes[outcome].inc(count)
        for outcome, gauge in m.totals.items():
            gauge.set(self.join.counts[outcome])
        late = self.merge.counts.pop("late", 0)
        if late:
            m.late.inc(late)
        m.delay.observe_batch(delays)
        m.pending.set(self.join.waiting + len(self.labels))
        m.waiting.set(self.merge.waiting)

    @property
    def labels_ahead(self) -> int:
        """Labels read and not joined: waiting for their turn or for their served record."""
        return len(self.labels) + len(self.join.early)

    @property
    def offsets(self) -> dict[str, int]:
        """Where a restart reads each input from: what the state reflects."""
        out = {}
        served = self.merge.restart_offset()
        if served is not None:
            out[self.served_topic] = served
        labels = self.labels[0][1] if self.labels else self.labels_next
        if labels is not None:
            out[self.labels_topic] = labels
        return out

    def forget(self) -> None:
        """Drop the gauges of a partition this worker no longer joins."""
        self.metrics.forget()

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint_due(self, every: int) -> bool:
        # Counters first: ``offsets`` looks through every record held (called each step).
        return self.events_since_checkpoint >= every and (
            self.taken != self.checkpoint_taken or self.offsets != self.checkpoint_offsets)

    def checkpoint_mark(self) -> bytes:
        """The watermark record written once a checkpoint is committed: a restart never
        writes the examples up to it again, so the learner can forget their ids."""
        m, idle = self.sent_mark or (self.clock, False)
        return watermark_record(self.partition, m, idle=idle, checkpoint=self.checkpoint_taken)

    def checkpoint_records(self) -> tuple[list[tuple[str, bytes | None]], tuple[str, bytes]]:
        """(state records, meta record): the meta commits them, so it goes once they are
        acknowledged."""
        self.checkpoint_id += 1
        offsets = self.offsets
        extra = {"merge": self.merge.state(), "taken": self.taken,
                 "labels_mark": None if self.taken_mark == NEVER else self.taken_mark,
                 "clock": None if self.clock == NEVER else self.clock}
        *records, meta = self.join.checkpoint_records(self.checkpoint_id, offsets, extra)
        self.checkpoint_offsets = offsets
        self.checkpoint_taken = self.taken
        self.events_since_checkpoint = 0
        assert meta[1] is not None
        return records, (meta[0], meta[1])

    def restore(self, records: list[tuple[str, bytes | None]]) -> list[tuple[str, bytes | None]]:
        """The join as of its last committed checkpoint; returns repair records."""
        meta = self.join.committed(records)
        if meta is None:
            return []
        self.checkpoint_id = meta["ck"]
        offsets = dict(meta.get("offsets") or {})
        self.checkpoint_offsets = dict(offsets)
        self.merge = SourceMerge.restore(self.spec.partitions, meta.get("merge"),
                                         offsets.get(self.served_topic))
        self.labels_next = offsets.get(self.labels_topic)
        self.taken = self.checkpoint_taken = meta.get("taken", 0)
        mark = meta.get("labels_mark")
        self.labels_mark = self.taken_mark = NEVER if mark is None else mark
        clock = meta.get("clock")
        self.clock = NEVER if clock is None else clock
        repairs = self.join.restore(records, self.checkpoint_id)
        log.info("partition %d: restored the label join (%d waiting) at offsets %s, %d "
                 "records taken", self.partition, self.join.waiting, offsets, self.taken)
        return repairs

