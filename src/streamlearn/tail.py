"""``streamlearn tail``: print what arrives on a topic (values, and headers of dead letters)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from kafka import KafkaConsumer

__all__ = ["TailRecord", "tail"]


@dataclass(frozen=True)
class TailRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def render(self) -> str:
        text = self.value.decode("utf-8", "replace") if self.value is not None else "null"
        head = "".join(f" {k}={v.decode('utf-8', 'replace')}" for k, v in self.headers)
        return f"[{self.partition}@{self.offset}]{head} {text}"


def tail(
    bootstrap: str,
    topic: str,
    from_beginning: bool = False,
    limit: int | None = None,
    idle_timeout: float | None = None,
) -> Iterator[TailRecord]:
    """Records of ``topic`` as they arrive; stops after ``limit`` or ``idle_timeout`` s idle."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,  # no group: tail never moves anyone's committed offsets
        client_id=f"streamlearn-tail-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(idle_timeout * 1000) if idle_timeout else float("inf"),
    )
    try:
        for count, record in enumerate(consumer, start=1):
            yield TailRecord(
                record.partition, record.offset, record.key, record.value,
                list(record.headers or []),
            )
            if limit is not None and count >= limit:
                return
    finally:
        consumer.close()
