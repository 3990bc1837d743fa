"""``streamlearn tail``: follow a topic without a consumer group, from its end or beginning.

The reading itself (no group, ``read_committed``, every partition assigned) is the Kafka
layer's :mod:`streamlearn.kafka.reader`; its names are also importable from here, where
the tools and tests know them (``TailRecord`` is :class:`~streamlearn.kafka.reader.TopicRecord`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from streamlearn.config import Settings
from streamlearn.kafka.reader import TopicNotFound, TopicRecord, open_topic, read_to_end

__all__ = ["TailRecord", "TopicNotFound", "read_to_end", "tail"]

TailRecord = TopicRecord


def tail(
    bootstrap: str,
    topic: str,
    from_beginning: bool = False,
    limit: int | None = None,
    idle_timeout: float | None = None,
    on_start: Callable[[int], None] | None = None,
    settings: Settings | None = None,
) -> Iterator[TopicRecord]:
    """Records of ``topic`` as they arrive (committed ones: ``read_committed``); stops after
    ``limit`` or ``idle_timeout`` s idle.

    ``on_start(n)`` is called once, when reading starts, with the number of records the
    topic already holds (shown only ``from_beginning``).
    Raises :class:`TopicNotFound` if the topic does not exist. ``settings`` gives the
    security settings (default: this process's).
    """
    idle = {"consumer_timeout_ms": int(idle_timeout * 1000)} if idle_timeout else {}
    with open_topic(bootstrap, topic, settings, client_id="streamlearn-tail", **idle) as opened:
        for tp in opened.first:
            opened.consumer.seek(tp, opened.first[tp] if from_beginning else opened.end[tp])
        if on_start is not None:
            on_start(opened.held)
        for count, message in enumerate(opened.consumer, start=1):
            yield TopicRecord.of(message)
            if limit is not None and count >= limit:
                return
