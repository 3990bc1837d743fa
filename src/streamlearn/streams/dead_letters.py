"""Dead letters: a record that cannot be processed goes to ``<name>.dlq``, alone, with why.

The record keeps its bytes, key and headers; headers added say where it came from
(topic, partition, offset) and the reason (``kafka.records.dead_letter_headers``), and the
pipeline's ``dead_letters`` counter of that reason moves.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter

from streamlearn.kafka.records import dead_letter_headers
from streamlearn.spec.pipeline import Pipeline
from streamlearn.spec.schema import BadEvent
from streamlearn.streams.messages import Emit, SourceMessage

__all__ = ["dead_letter", "model_error"]

# The processor's logger, as before dead letters had a module: operators filter on it.
log = logging.getLogger("streamlearn.streams.processor")


def dead_letter(spec: Pipeline, counters: Mapping[str, Counter], message: SourceMessage,
                error: BadEvent, emit: Emit, origin: tuple[str, int, int] | None = None,
                value: bytes | None = None) -> None:
    """A record to ``<name>.dlq`` with the reason, counted in ``counters[reason]``;
    ``origin``/``value`` replace the record's own position and bytes (an event forwarded by
    an earlier stage)."""
    counters[error.reason].inc()
    topic, partition, offset = message.topic() or "", message.partition(), message.offset()
    original = message.headers()
    if origin is not None:
        (topic, partition, offset), original = origin, None
    log.warning("dead letter %s[%s]@%s: %s", topic, partition, offset, error)
    headers = dead_letter_headers(topic, partition or 0, offset or 0, error,
                                  _header_list(original))
    emit(spec.dlq_topic, value if value is not None else message.value() or b"",
         message.key(), headers=headers)


def model_error(when: str, exc: Exception) -> BadEvent:
    """The dead letter's reason when the model raised (``when``: predicting, learning)."""
    return BadEvent("model_error", f"the model raised while {when}: {exc!r}")


def _header_list(headers: Any) -> list[tuple[str, bytes]]:
    if not headers:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(k), v if isinstance(v, bytes) else str(v or "").encode()) for k, v in items]
