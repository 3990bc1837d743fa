"""Wire formats: decoding events, encoding predictions and dead letters.

Plain functions, no faust: the agent calls them, tests call them directly.

>>> from streamlearn.pipeline import Pipeline
>>> spec = Pipeline(name="p", key_field="user", label_field="y", model=dict)
>>> decode_event(b'{"user": "u1", "amount": 3.5, "y": true}', spec)
{'user': 'u1', 'amount': 3.5, 'y': True}
>>> features({'user': 'u1', 'amount': 3.5, 'y': True}, spec)
{'amount': 3.5}
>>> decode_event(b'{"amount": 3.5, "y": true}', spec)
Traceback (most recent call last):
...
streamlearn.streams.records.BadEvent: missing_field: event lacks field 'user'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from streamlearn.pipeline import Pipeline

__all__ = [
    "BadEvent",
    "dead_letter_headers",
    "decode_event",
    "encode_prediction",
    "features",
]

HEADER_PREFIX = "streamlearn."
Headers = Sequence[tuple[str, bytes]]


class BadEvent(ValueError):
    """An event that cannot be processed; ``reason`` is a short metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def decode_event(raw: bytes | None, spec: Pipeline) -> dict[str, Any]:
    """Parse one event, or raise :class:`BadEvent` saying why it is unusable."""
    if raw is None:
        raise BadEvent("invalid_json", "record has no value")
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEvent("invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(event, dict):
        raise BadEvent("not_object", f"event is a JSON {type(event).__name__}, not an object")
    for field in spec.required_fields:
        if event.get(field) is None:
            raise BadEvent("missing_field", f"event lacks field {field!r}")
    return event


def features(event: dict[str, Any], spec: Pipeline) -> dict[str, Any]:
    """The model's input: chosen fields, or all but the reserved ones, in event order."""
    if spec.features is not None:
        return {name: event[name] for name in spec.features}
    reserved = spec.reserved_fields
    return {k: v for k, v in event.items() if k not in reserved}


def encode_prediction(
    *,
    event_id: str,
    key: Any,
    model: str,
    model_version: int,
    prediction: Any,
    proba: dict[Any, float] | None,
    event_time: Any,
    predicted_at: int,
) -> bytes:
    """One prediction as JSON (see README: wire formats); class labels become string keys.

    >>> encode_prediction(event_id="e1", key="u1", model="m", model_version=3,
    ...     prediction=True, proba={False: 0.25, True: 0.75}, event_time=1, predicted_at=2)
    b'{"event_id":"e1","key":"u1","model":"m","model_version":3,"prediction":true,"proba":{"false":0.25,"true":0.75},"event_time":1,"predicted_at":2}'
    """
    return orjson.dumps(
        {
            "event_id": event_id,
            "key": key,
            "model": model,
            "model_version": model_version,
            "prediction": prediction,
            "proba": proba,
            "event_time": event_time,
            "predicted_at": predicted_at,
        },
        option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY,
    )


def dead_letter_headers(
    topic: str, partition: int, offset: int, error: BadEvent, original: Headers | None
) -> list[tuple[str, bytes]]:
    """Headers of a dead letter: the source position and the error, then the originals.

    >>> dead_letter_headers("t", 0, 7, BadEvent("not_object", "x"), [("trace", b"1")])[:2]
    [('streamlearn.source.topic', b't'), ('streamlearn.source.partition', b'0')]
    """
    return [
        (HEADER_PREFIX + "source.topic", topic.encode()),
        (HEADER_PREFIX + "source.partition", str(partition).encode()),
        (HEADER_PREFIX + "source.offset", str(offset).encode()),
        (HEADER_PREFIX + "error.reason", error.reason.encode()),
        (HEADER_PREFIX + "error", error.detail.encode()),
        *(original or ()),
    ]
