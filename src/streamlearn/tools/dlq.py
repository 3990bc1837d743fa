"""A pipeline's dead letters: read them, export their values to fix, send them back.

A dead letter on ``<name>.dlq`` is the original record (key, bytes and headers unchanged)
plus ``streamlearn.*`` headers that say where it came from and why it failed. Reading uses
no consumer group and stops at the topic's end offsets, so it never waits for more.

>>> letter = DeadLetter("fraud.dlq", TopicRecord(0, 4, b"c1", b'{"amount": "12\\n"}', [
...     ("trace", b"t-1"), ("streamlearn.error.reason", b"bad_type"),
...     ("streamlearn.error", b"field 'amount' is declared numeric")]))
>>> letter.reason, letter.excerpt()
('bad_type', '{"amount": "12\\\\n"}')
>>> letter.replay_headers()
[('trace', b't-1'), ('streamlearn.replayed_from', b'fraud.dlq:4')]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from kafka.errors import KafkaError

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.kafka import python_clients
from streamlearn.kafka.admin import topic_partitions
from streamlearn.kafka.reader import TopicNotFound, TopicRecord, read_to_end
from streamlearn.kafka.records import ERROR_HEADER, HEADER_PREFIX, REASON_HEADER
from streamlearn.spec.pipeline import Pipeline
from streamlearn.spec.schema import BadEvent

__all__ = [
    "ERROR_HEADER",
    "HEADER_PREFIX",
    "REASON_HEADER",
    "REPLAYED_FROM_HEADER",
    "DeadLetter",
    "DlqError",
    "check_event",
    "export_values",
    "read_dead_letters",
    "read_fixed_events",
    "replay_dead_letters",
    "send_events",
    "summary",
]

REPLAYED_FROM_HEADER = HEADER_PREFIX + "replayed_from"
_EXCERPT_CHARS = 60
_SEND_TIMEOUT_S = 60.0


class DlqError(StreamlearnError):
    """Dead letters that cannot be read, exported or replayed."""


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    record: TopicRecord

    def header(self, name: str) -> str:
        for key, value in self.record.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return ""

    @property
    def offset(self) -> int:
        return self.record.offset

    @property
    def reason(self) -> str:
        return self.header(REASON_HEADER) or "unknown"

    @property
    def error(self) -> str:
        return self.header(ERROR_HEADER)

    def excerpt(self, chars: int = _EXCERPT_CHARS) -> str:
        """The value on one line: control characters escaped, cut at ``chars``."""
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.record.text)
        return text if len(text) <= chars else text[: chars - 1] + "…"

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original headers (no ``streamlearn.*`` ones) and where the letter was."""
        kept = [(k, v) for k, v in self.record.headers if not k.startswith(HEADER_PREFIX)]
        origin = f"{self.topic}:{self.record.offset}".encode()
        return [*kept, (REPLAYED_FROM_HEADER, origin)]


def read_dead_letters(
    bootstrap: str, spec: Pipeline, reason: str | None = None,
    settings: Settings | None = None,
) -> tuple[list[DeadLetter], Counter[str]]:
    """Dead letters of ``spec`` (those with ``reason`` if given), and counts of every reason."""
    try:
        letters = [DeadLetter(spec.dlq_topic, r)
                   for r in read_to_end(bootstrap, spec.dlq_topic, settings)]
    except TopicNotFound:
        raise DlqError(
            f"no dead-letter topic {spec.dlq_topic!r} at {bootstrap}: `streamlearn run` "
            "creates it (check the pipeline file and --name)"
        ) from None
    reasons = Counter(letter.reason for letter in letters)
    if reason is not None:
        letters = [letter for letter in letters if letter.reason == reason]
    return letters, reasons


def summary(topic: str, reasons: Counter[str], shown: int, reason: str | None) -> str:
    """One line: how many dead letters there are, by reason, and how many are shown.

    >>> summary("f.dlq", Counter({"bad_type": 3, "invalid_json": 1}), 2, "bad_type")
    '4 dead letters on f.dlq (bad_type 3, invalid_json 1); 2 shown with reason bad_type'
    """
    total = sum(reasons.values())
    if not total:
        return f"no dead letters on {topic}"
    counts = ", ".join(f"{r} {n}" for r, n in reasons.most_common())
    where = f" with reason {reason}" if reason else ""
    noun = "dead letter" if total == 1 else "dead letters"
    return f"{total} {noun} on {topic} ({counts}); {shown} shown{where}"


def check_event(spec: Pipeline, value: Any) -> str | None:
    """Why the worker would reject decoded ``value`` (``reason: detail``), or None.

    >>> spec = Pipeline(name="f", key_field="card", features={"amount": "numeric"},
    ...                 label_field="y", label_type="boolean", model=dict)
    >>> check_event(spec, {"card": "c1", "amount": 3, "y": True}) is None
    True
    >>> check_event(spec, {"amount": 3, "y": True})
    "missing_field: event lacks the key field 'card'"
    """
    if not isinstance(value, dict):
        return "not_object: not a JSON object"
    if value.get(spec.key_field) is None:
        return f"missing_field: event lacks the key field {spec.key_field!r}"
    try:
        spec.schema().check(value)
    except BadEvent as exc:
        return str(exc)
    return None


def _export_line(letter: DeadLetter) -> tuple[bytes, Any]:
    """The letter's value as one line, and its decoded JSON (None if it is not JSON)."""
    raw = letter.record.value if letter.record.value is not None else b"null"
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Not JSON: kept as text to fix by hand, on one line so the file stays line-based.
        text = letter.record.text.replace("\r", " ").replace("\n", " ")
        return text.encode(), None
    return orjson.dumps(value), value


def export_values(
    letters: Iterable[DeadLetter], path: str | Path, spec: Pipeline, force: bool = False
) -> tuple[int, int]:
    """Write each letter's original value as a JSON line; ``(written, still failing)``.

    Values that are not JSON are written as their text, to fix by hand; "still failing"
    counts the lines the pipeline would reject as they are.
    """
    path = Path(path)
    if path.exists() and not force:
        raise DlqError(f"{str(path)!r} exists; add --force to overwrite it")
    written = failing = 0
    with path.open("wb") as out:
        for letter in letters:
            line, value = _export_line(letter)
            out.write(line + b"\n")
            written += 1
            failing += value is None or check_event(spec, value) is not None
    return written, failing


def read_fixed_events(path: str | Path, spec: Pipeline) -> list[dict[str, Any]]:
    """Events of a JSON lines file, all checked against ``spec`` before any is sent.

    Blank lines are skipped. Raises :class:`DlqError` naming the first bad line.
    """
    path = Path(path)
    if not path.is_file():
        raise DlqError(f"file {str(path)!r} not found")
    events: list[dict[str, Any]] = []
    problems: list[str] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                problems.append(f"line {number}: invalid_json: {exc}")
                continue
            problem = check_event(spec, value)
            if problem:
                problems.append(f"line {number}: {problem}")
            else:
                events.append(value)
    if problems:
        raise DlqError(
            f"{str(path)!r} {problems[0]} ({len(problems)} of {len(problems) + len(events)} "
            "lines fail the pipeline's checks; nothing was sent)"
        )
    return events


def _send(
    bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes | None, list[Any]]],
    settings: Settings | None,
) -> int:
    """Send ``(topic, key, value, headers)`` records and wait for every acknowledgement."""
    records = list(records)
    for topic in {record[0] for record in records}:
        # Else the producer would wait a minute for metadata of a topic that never comes.
        if topic_partitions(bootstrap, topic, settings=settings) is None:
            raise DlqError(
                f"no events topic {topic!r} at {bootstrap}: `streamlearn run` creates it "
                "(check the pipeline file and --name)"
            )
    producer = python_clients.producer(bootstrap, settings, client_id="streamlearn-dlq")
    try:
        futures = [
            producer.send(topic, key=key, value=value, headers=headers)
            for topic, key, value, headers in records
        ]
        producer.flush(timeout=_SEND_TIMEOUT_S)
        for future in futures:
            future.get(timeout=_SEND_TIMEOUT_S)
    except KafkaError as exc:
        raise DlqError(f"sending to {bootstrap} failed: {exc}") from None
    finally:
        producer.close()
    return len(futures)


def replay_dead_letters(
    letters: Sequence[DeadLetter], bootstrap: str, spec: Pipeline,
    settings: Settings | None = None,
) -> int:
    """Send each letter's original key and bytes back to the events topic."""
    return _send(bootstrap, (
        (spec.events_topic, letter.record.key, letter.record.value, letter.replay_headers())
        for letter in letters
    ), settings)


def send_events(events: Sequence[dict[str, Any]], bootstrap: str, spec: Pipeline,
                settings: Settings | None = None) -> int:
    """Send events as JSON to the events topic, keyed by the spec's key field."""
    return _send(bootstrap, (
        (spec.events_topic, str(event[spec.key_field]).encode(), orjson.dumps(event), [])
        for event in events
    ), settings)
