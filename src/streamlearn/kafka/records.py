"""Wire formats: decoding events, encoding predictions and dead letters.

Plain functions, no Kafka client: the hot path calls them, tests call them directly.

>>> decode_event(b'{"user": "u1", "amount": 3.5, "y": true}', max_bytes=1000)
{'user': 'u1', 'amount': 3.5, 'y': True}
>>> decode_event(b'[1, 2]', max_bytes=1000)
Traceback (most recent call last):
...
streamlearn.spec.schema.BadEvent: not_object: event is a JSON list, not an object
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from streamlearn.spec.schema import BadEvent, coerce, parse_time

__all__ = [
    "ERROR_HEADER",
    "HEADER_PREFIX",
    "REASON_HEADER",
    "BadEvent",
    "dead_letter_headers",
    "decode_event",
    "decode_label",
    "encode_example",
    "encode_prediction",
    "encode_served",
    "is_watermark",
    "watermark_record",
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


def decode_label(raw: bytes | None, max_bytes: int, label_type: str | None
                 ) -> tuple[str, Any, float | None]:
    """``(event_id, label, time or None)`` of a record of ``<name>.labels``, or
    :class:`BadEvent` (the dead-letter reason) when it is unusable.

    >>> decode_label(b'{"event_id": 7, "label": true, "time": 5}', 1000, "boolean")
    ('7', True, 5.0)
    >>> decode_label(b'{"event_id": "e1", "label": "yes"}', 1000, "boolean")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamlearn.spec.schema.BadEvent: bad_type: field 'label' is declared boolean, got a JSON ...
    """
    record = decode_event(raw, max_bytes)
    event_id, label = record.get("event_id"), record.get("label")
    if event_id is None or label is None:
        missing = "event_id" if event_id is None else "label"
        raise BadEvent("missing_field", f"label record lacks {missing!r}")
    if type(event_id) not in (str, int):
        raise BadEvent("bad_type", "field 'event_id' must be a JSON string or integer")
    if label_type is not None:
        label = coerce("label", label_type, label)
    elif type(label) not in (str, int, float, bool):
        raise BadEvent("bad_type", "field 'label' must be a JSON string, number or boolean")
    t = record.get("time")
    return str(event_id), label, None if t is None else parse_time(t, "time")


def encode_example(served: dict[str, Any], label: Any, label_time: float,
                   source: tuple[int, int] | None = None, m: float | None = None) -> bytes:
    """A training example: the served record joined with its label (wire formats), with
    the join's ``source`` ([partition, sequence number]) and merge time ``m``, by which the
    learner orders the examples of every partition (``streams.merge``).

    >>> encode_example({"event_id": "e1", "x": {"a": 1}}, True, 9.0, (0, 4), 9.0)
    b'{"event_id":"e1","x":{"a":1},"label":true,"label_time":9.0,"src":[0,4],"m":9.0}'
    """
    record = {**served, "label": label, "label_time": label_time}
    if source is not None:
        record["src"], record["m"] = source, m
    return orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)


def watermark_record(source: int, m: float | None, idle: bool = False,
                     checkpoint: int | None = None) -> bytes:
    """A watermark record of a partition that several sources write: ``source`` writes
    nothing below merge time ``m`` from now on; ``idle``: it has read all its input and
    seen nothing new for a while (``streams.merge``); None: no event time yet;
    ``checkpoint`` (a label join's): the records it had taken at its newest checkpoint, so
    it never writes the examples up to there again. Keyed ``watermark/<source>``.

    >>> watermark_record(2, 1500.0)
    b'{"watermark":1500.0,"source":2,"idle":false}'
    """
    record = {"watermark": None if m == float("-inf") else m, "source": source, "idle": idle}
    if checkpoint is not None:
        record["checkpoint"] = checkpoint
    return orjson.dumps(record)


def is_watermark(record: dict[str, Any]) -> bool:
    """True for a watermark record (readers of ``.served`` and ``.training`` skip them)."""
    return "watermark" in record


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
    """One prediction as JSON (docs/reference/wire-formats.md); class labels become string keys.

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
    *,
    instance: str | None = None,
    shadows: dict[str, dict[str, Any]] | None = None,
    source: tuple[int, int] | None = None,
    m: float | None = None,
) -> bytes:
    """The served record: what a prediction was made from (ARCHITECTURE.md, wire formats).

    ``x`` is the model's input as served (declared fields, then derived features);
    ``label`` is present when it rode in the event; ``instance`` is the champion's instance
    id and ``shadows`` the other candidates' predictions, by name, when there are candidates.
    ``source`` ([events partition, offset]) and ``m`` (the partition's event time so far)
    let the label join read ``.served`` in an order that is a function of the logs.

    >>> encode_served("e1", "u1", {"n": 2}, "m", 3, True, {True: 0.75}, 1, False)
    b'{"event_id":"e1","key":"u1","x":{"n":2},"predictions":{"m":{"prediction":true,"proba":{"true":0.75},"model_version":3}},"champion":"m","event_time":1,"label":false}'
    """
    served = {"prediction": prediction, "proba": proba, "model_version": model_version}
    if instance is not None:
        served["instance"] = instance
    record = {
        "event_id": event_id,
        "key": key,
        "x": x,
        "predictions": {model: served, **(shadows or {})},
        "champion": model,
        "event_time": event_time,
    }
    if label is not _NO_LABEL:
        record["label"] = label
    if source is not None:
        record["src"], record["m"] = source, m
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
