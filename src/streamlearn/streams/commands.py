"""The registry's commands as the active learner reads them: ``<name>.commands`` whole,
from its start, each signed command applied once, in order.

Records before the takeover are the topic's history: a command applied by an earlier
learner (its seq at or below the restored snapshot's) is skipped silently; after it, a seq
at or below the newest applied is a replay and is refused. Under exactly-once a command the
committed position reflects but the restored snapshot does not is looked up by its seq and
applied again where it took effect (``streams.active_learner``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException
from confluent_kafka import TopicPartition as TP

from streamlearn.kafka.snapshots import watermark_offsets
from streamlearn.models.registry import CommandRefused, decode_command
from streamlearn.monitoring.views import LearnerMetrics

__all__ = ["CommandLog"]

log = logging.getLogger(__name__)

FIND_ATTEMPTS = 1000
"""Records (or empty polls of a second) read looking for a command the committed metadata
names (it is on the topic, before its end at takeover)."""


class CommandLog:
    """Reads ``topic`` (one partition, no group) while the learner is active."""

    def __init__(self, consumer_config: dict[str, Any], group: str, topic: str,
                 keys: tuple[bytes, ...], metrics: LearnerMetrics) -> None:
        self.consumer = Consumer({**consumer_config, "enable.auto.commit": False,
                                  "group.id": group})
        self.topic, self.keys, self.metrics = topic, keys, metrics
        self.seq = 0
        """The newest command applied (in every snapshot: a replayed command is refused)."""
        self.at = 0
        """The example position (merge releases) at which it took effect."""
        self.before = 0
        """The topic's end offset at takeover: older records are its history."""

    def activate(self, seq: int, at: int) -> None:
        """A takeover: the restored snapshot's newest command; read from the start."""
        self.seq, self.at = seq, at
        try:
            self.before = watermark_offsets(self.consumer, TP(self.topic, 0))[1]
        except KafkaException:
            self.before = 0  # then an old applied command is refused as replayed: harmless
        self.consumer.assign([TP(self.topic, 0, OFFSET_BEGINNING)])

    def deactivate(self) -> None:
        self.consumer.unassign()

    def close(self) -> None:
        self.consumer.close()

    def applied(self, command: dict[str, Any], at: int) -> None:
        self.seq, self.at = command["seq"], at

    def new(self) -> Iterator[tuple[dict[str, Any], int]]:
        """Each command to apply now, with its offset (refusals logged and counted)."""
        for message in self.consumer.consume(100, timeout=0):
            if message.error():
                continue
            try:
                command = decode_command(message.value(), self.keys)
                if command["seq"] <= self.seq:
                    if message.offset() < self.before:
                        continue  # applied before this takeover (the topic is read whole)
                    raise CommandRefused("replayed", f"seq {command['seq']} was applied "
                                         f"already (newest: {self.seq})")
            except CommandRefused as exc:
                self.refused(exc, message.offset())
                continue
            yield command, message.offset()

    def refused(self, exc: Exception, offset: int) -> None:
        log.error("%s: %s at offset %d", self.topic, exc, offset)
        self.metrics.refuse_command(getattr(exc, "reason", "refused"))

    def find(self, seq: int) -> dict[str, Any]:
        """The authentic command ``seq`` (applied before this takeover: it is on the topic).
        Read one record at a time, so the commands after it are left for :meth:`new`."""
        for _ in range(FIND_ATTEMPTS):
            for message in self.consumer.consume(1, timeout=1.0):
                if message.error():
                    continue
                try:
                    command = decode_command(message.value(), self.keys)
                except CommandRefused:
                    continue
                if command["seq"] == seq:
                    return command
        raise CommandRefused("missing", f"command {seq}, named by the learner's committed "
                             f"metadata, is not on {self.topic}")
