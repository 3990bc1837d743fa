"""How each candidate model scored over time, and what drift did (``streamlearn report``).

The global learner scores every candidate on every labelled example before learning it
(prequential evaluation), but the registry and the metrics only keep today's figures. This
report replays ``<name>.training`` and ``<name>.drift`` from the beginning and draws the
rolling accuracy (MAE for a regressor) of each candidate and of what was *served* (the
champion's prediction, whichever candidate that was), over the training examples, with the
policy's actions and the raw detector alerts at the example where they happened: so one can
see whether a promotion or a reset paid off, and how long an alert went unanswered.

It scores the predictions as served: right after a candidate is reset, the learner scores
the fresh model's own prediction instead, so the two can differ there. A duplicate example
(the training topic is written at least once) is skipped as the learner skips it, so the x
axis counts what the learner learned: the same numbers as the drift events' ``at_example``.
Data drift events are positioned by input offset, on no such axis: they are listed, not
drawn. It takes plain dicts; only ``read.read_report`` knows Kafka.

>>> examples = [{"event_id": str(i), "label": i % 2 == 0, "champion": "tree" if i < 6 else "lr",
...              "predictions": {"tree": {"prediction": True}, "lr": {"prediction": i % 2 == 0}}}
...             for i in range(10)]
>>> drift = [{"model": "m", "kind": "concept", "action": "switch", "at_example": 6,
...           "from": "tree#0", "to": "lr#0", "reason": "lr leads by 0.5"}]
>>> summary = build_report("fraud", examples, drift, window=4).summary()
>>> summary.metric, summary.examples, summary.actions
('accuracy', 10, {'switch': 1})
>>> [(c.name, c.scored, c.overall, c.rolling) for c in summary.candidates]
[('tree', 10, 0.5, 0.5), ('lr', 10, 1.0, 1.0)]
>>> summary.served.overall, summary.served.rolling
(0.7, 1.0)
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CandidateSummary", "DriftEvent", "Report", "ReportSummary", "build_report",
    "is_classification",
]

WINDOW = 1000
"""The learner's rolling window (``models.online.ROLLING_WINDOW``), so figures compare."""
MAX_POINTS = 2000
"""Points per line at most: enough for a 10-inch chart, whatever the topic's length."""
ACTIONS = ("alert", "reset", "challenge", "promote", "retire", "switch", "rollback")


def is_classification(label: Any) -> bool:
    """Whether ``label`` is a class (boolean, or text: the schema makes a categorical
    integer its string) rather than a number to regress.

    >>> is_classification(True), is_classification("spam"), is_classification(3.5)
    (True, True, False)
    """
    return isinstance(label, bool | str)


def _finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite number (never a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class _ExactSum:
    """A running float sum with no rounding until it is read: ``math.fsum``'s partials
    (Shewchuk), kept open so that a long stream needs no list of its values."""

    def __init__(self) -> None:
        self.partials: list[float] = []

    def add(self, x: float) -> None:
        kept = []
        for y in self.partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                kept.append(low)
            x = high
        kept.append(x)
        self.partials = kept

    def value(self) -> float:
        return math.fsum(self.partials)


class _Track:
    """One line of the chart: a candidate's (or the served) scores, overall and rolling."""

    def __init__(self, window: int) -> None:
        self.recent: deque[float] = deque(maxlen=window)
        self.total = _ExactSum()
        self.scored = 0
        self.last = 0
        """Number of the last example scored."""
        self.points: list[tuple[int, float]] = []

    def score(self, position: int, value: float) -> None:
        self.scored += 1
        self.total.add(value)
        self.recent.append(value)
        self.last = position

    def overall(self) -> float | None:
        return self.total.value() / self.scored if self.scored else None

    def rolling(self) -> float | None:
        return math.fsum(self.recent) / len(self.recent) if self.recent else None

    def sample(self, position: int) -> None:
        """A point at ``position`` if anything was scored since the previous point, so a
        candidate that is absent for a while leaves a gap rather than a flat line."""
        rolling = self.rolling()
        if rolling is not None and self.last > (self.points[-1][0] if self.points else 0):
            self.points.append((position, rolling))


@dataclass(frozen=True)
class DriftEvent:
    """One record of ``<name>.drift``, as text for display (its contents are untrusted)."""

    model: str
    kind: str
    detector: str
    level: str
    action: str
    at_example: int | None
    source: str
    target: str
    reason: str

    @classmethod
    def parse(cls, record: Mapping[str, Any]) -> DriftEvent:
        def text(field: str) -> str:
            value = record.get(field)
            return "" if value is None else str(value)

        at = record.get("at_example")
        return cls(text("model"), text("kind"), text("detector"), text("level"),
                   text("action") or "alert",
                   at if isinstance(at, int) and not isinstance(at, bool) else None,
                   text("from"), text("to"), text("reason"))

    @property
    def on_training_axis(self) -> bool:
        """Positioned by training example (data drift events are by input offset)."""
        return self.kind != "data" and self.at_example is not None


@dataclass(frozen=True)
class CandidateSummary:
    name: str
    scored: int
    overall: float | None
    rolling: float | None
    """Over the last ``window`` examples it was scored on."""


@dataclass(frozen=True)
class ReportSummary:
    pipeline: str
    metric: str
    """``accuracy`` or ``MAE``."""
    window: int
    examples: int
    skipped: int
    """Records that were no training example or drift event: not a JSON object, no label."""
    duplicates: int
    candidates: tuple[CandidateSummary, ...]
    served: CandidateSummary
    actions: dict[str, int]
    """Events on the training axis by action (``alert`` for raw detector signals)."""
    data_events: int


class Report:
    """Training examples and drift events, added in topic order (see the module doc)."""

    def __init__(self, pipeline: str, window: int = WINDOW, max_points: int = MAX_POINTS,
                 keep_ms: float | None = None) -> None:
        self.pipeline = pipeline
        self.window = window
        self.max_points = max_points
        self.keep_ms = keep_ms
        """How long (label time) an event id is remembered to skip its duplicates; None:
        for ever. The learner remembers them for twice the label TTL."""
        self.examples = self.skipped = self.duplicates = 0
        self.classification: bool | None = None
        """Decided by the first label (:func:`is_classification`)."""
        self.candidates: dict[str, _Track] = {}
        self.served = _Track(window)
        self.events: list[DriftEvent] = []
        self.stride = 1
        """Lines are sampled every ``stride`` examples; doubled when they grow too long."""
        self._seen: set[str] = set()
        self._expiry: list[tuple[float, str]] = []
        self._watermark = -math.inf

    @property
    def metric(self) -> str:
        return "MAE" if self.classification is False else "accuracy"

    def add_example(self, record: Any) -> None:
        """Score one training example (a record's JSON)."""
        if not isinstance(record, Mapping) or record.get("label") is None:
            self.skipped += 1
            return
        if self._duplicate(record):
            self.duplicates += 1
            return
        self.examples += 1
        label = record["label"]
        if self.classification is None:
            self.classification = is_classification(label)
        predictions = record.get("predictions")
        predictions = predictions if isinstance(predictions, Mapping) else {}
        for name, served in predictions.items():
            value = self._value(served, label)
            if value is not None:
                self.candidates.setdefault(str(name), _Track(self.window)).score(
                    self.examples, value)
        champion = record.get("champion")
        value = self._value(predictions.get(champion) if isinstance(champion, str) else None,
                            label)
        if value is not None:
            self.served.score(self.examples, value)
        if self.examples % self.stride == 0:
            self._sample()

    def add_drift(self, record: Any) -> None:
        """Add one drift event (a record's JSON)."""
        if isinstance(record, Mapping):
            self.events.append(DriftEvent.parse(record))
        else:
            self.skipped += 1

    def _value(self, served: Any, label: Any) -> float | None:
        """1 or 0 for a hit or a miss, or the absolute error; None if nothing to score."""
        if not isinstance(served, Mapping) or served.get("prediction") is None:
            return None
        prediction = served["prediction"]
        if self.classification:
            return 1.0 if prediction == label else 0.0
        y, y_hat = _finite(label), _finite(prediction)
        error = abs(y - y_hat) if y is not None and y_hat is not None else None
        return error if error is not None and math.isfinite(error) else None

    def _duplicate(self, record: Mapping[str, Any]) -> bool:
        """Whether the learner would skip ``record`` as an event it already learned."""
        if record.get("event_id") is None:
            return False
        event_id = str(record["event_id"])
        if event_id in self._seen:
            return True
        self._seen.add(event_id)
        if self.keep_ms is not None:
            label_time = _finite(record.get("label_time")) or 0.0
            heapq.heappush(self._expiry, (label_time, event_id))
            if label_time > self._watermark:
                self._watermark = label_time
                while self._expiry and self._expiry[0][0] < label_time - self.keep_ms:
                    self._seen.discard(heapq.heappop(self._expiry)[1])
        return False

    def _tracks(self) -> list[_Track]:
        return [*self.candidates.values(), self.served]

    def _sample(self) -> None:
        for track in self._tracks():
            track.sample(self.examples)
        if self.examples // self.stride > self.max_points:
            self.stride *= 2
            for track in self._tracks():
                track.points = [p for p in track.points if p[0] % self.stride == 0]

    def line(self, track: _Track) -> tuple[list[int], list[float]]:
        """A track's sampled (x, rolling) points ending at its exact final value, with a
        NaN where it was not scored for longer than a sampling step (a gap in the line)."""
        points = list(track.points)
        rolling = track.rolling()
        if rolling is not None and track.last > (points[-1][0] if points else 0):
            points.append((track.last, rolling))
        xs: list[int] = []
        ys: list[float] = []
        for x, y in points:
            if xs and x - xs[-1] > self.stride:
                xs.append(x - 1)
                ys.append(math.nan)
            xs.append(x)
            ys.append(y)
        return xs, ys

    def summary(self) -> ReportSummary:
        def of(name: str, track: _Track) -> CandidateSummary:
            return CandidateSummary(name, track.scored, track.overall(), track.rolling())

        on_axis = Counter(e.action for e in self.events if e.on_training_axis)
        order = [*ACTIONS, *sorted(set(on_axis) - set(ACTIONS))]
        return ReportSummary(
            self.pipeline, self.metric, self.window, self.examples, self.skipped,
            self.duplicates, tuple(of(n, t) for n, t in self.candidates.items()),
            of("served", self.served), {a: on_axis[a] for a in order if on_axis[a]},
            sum(1 for e in self.events if not e.on_training_axis))


def build_report(pipeline: str, examples: Iterable[Any], drift_events: Iterable[Any],
                 window: int = WINDOW, keep_ms: float | None = None) -> Report:
    """A report of ``examples`` (training records' JSON, in topic order) and
    ``drift_events`` (drift records' JSON)."""
    report = Report(pipeline, window=window, keep_ms=keep_ms)
    for example in examples:
        report.add_example(example)
    for event in drift_events:
        report.add_drift(event)
    return report
