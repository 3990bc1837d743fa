"""What the per-event logic reads and where its outputs go, free of Kafka clients.

A consumed record is anything shaped like confluent-kafka's ``Message``
(:class:`SourceMessage`); outputs go to an :class:`Emit`, which the producer's ``produce``
fits, and so does an :class:`OutputList` (tests, tools).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from streamlearn.kafka.records import Headers

__all__ = ["Emit", "Outgoing", "OutputList", "SourceMessage"]


class SourceMessage(Protocol):
    """What the processor reads of a consumed record (confluent-kafka's ``Message`` fits)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Any: ...


class Emit(Protocol):
    """Where outputs go: confluent-kafka's ``Producer.produce`` fits, and so does a list."""

    def __call__(self, topic: str, value: bytes, key: bytes | None, *,
                 headers: Headers | None = None) -> None: ...


class Outgoing(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None


class OutputList(list[Outgoing]):
    """An :class:`Emit` that keeps the outputs, for tests and tools."""

    def __call__(self, topic: str, value: bytes, key: bytes | None, *,
                 headers: Headers | None = None) -> None:
        self.append(Outgoing(topic, key, value, headers))
