"""Wire formats: decoding events, encoding predictions and dead letters.

Plain functions, no Kafka client: the hot path calls them, tests call them directly.

>>> decode_event(b'{"user": "u1", "amount": 3.5, "y": true}', max_bytes=1000)
{'user': 'u1', 'amount': 3.5, 'y': True}
>>> decode_event(b'[1, 2]', max_bytes=1000)
Traceback (most recent call last):
...
streamlearn.schema.BadEvent: not_object: event is a JSON list, not an object
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from streamlearn.schema import BadEvent

__all__ = [
    "ERROR_HEADER",
    "HEADER_PREFIX",
    "REASON_HEADER",
    "BadEvent",
    "dead_letter_headers",
    "decode_event",
    "encode_prediction",
    "encode_served",
]

HEADER_PREFIX = "streamlearn."
REASON_HEADER = HEADER_PREFIX + "error.reason"
ERROR_HEADER = HEADER_PREFIX + "error"
Headers = Sequence[tuple[str, bytes]]


def decode_event(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    """Parse one event, or raise :class:`BadEvent` saying why it is unusable."""
    if raw is None:
        raise BadEvent("invalid_json", "record has no value")
    if len(raw) > max_bytes:
        raise BadEvent(
            "too_large", f"event of {len(raw)} bytes exceeds STREAMLEARN_MAX_EVENT_BYTES "
            f"({max_bytes})"
        )
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEvent("invalid_json", f"not valid JSON: {exc}") from None
    if type(event) is not dict:
        raise BadEvent("not_object", f"event is a JSON {type(event).__name__}, not an object")
    return event


def encode_prediction(
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

    Positional arguments: it runs once per event.

    >>> encode_prediction("e1", "u1", "m", 3, True, {False: 0.25, True: 0.75}, 1, 2)
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


_NO_LABEL = object()


def encode_served(
    event_id: str,
    key: Any,
    x: dict[str, Any],
    model: str,
    model_version: int,
    prediction: Any,
    proba: dict[Any, float] | None,
    event_time: Any,
    label: Any = _NO_LABEL,
) -> bytes:
    """The served record: what a prediction was made from (ARCHITECTURE.md, wire formats).

    ``x`` is the model's input as served (declared fields, then derived features);
    ``label`` is present when it rode in the event.

    >>> encode_served("e1", "u1", {"n": 2}, "m", 3, True, {True: 0.75}, 1, False)
    b'{"event_id":"e1","key":"u1","x":{"n":2},"predictions":{"m":{"prediction":true,"proba":{"true":0.75},"model_version":3}},"champion":"m","event_time":1,"label":false}'
    """
    record = {
        "event_id": event_id,
        "key": key,
        "x": x,
        "predictions": {
            model: {"prediction": prediction, "proba": proba, "model_version": model_version}
        },
        "champion": model,
        "event_time": event_time,
    }
    if label is not _NO_LABEL:
        record["label"] = label
    return orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


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
        (REASON_HEADER, error.reason.encode()),
        (ERROR_HEADER, error.detail.encode()),
        *(original or ()),
    ]
