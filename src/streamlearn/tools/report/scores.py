"""How each candidate model scored over time, and what drift did (``streamlearn report``).

The global learner scores every candidate on every labelled example before learning it
(prequential evaluation), but the registry and the metrics only keep today's figures. This
report replays ``<name>.training`` and ``<name>.drift`` from the beginning and draws the
rolling primary metric of the pipeline (``Pipeline.metrics``: ROC AUC for a boolean label
by default) of each candidate and of what was *served* (the champion's prediction,
whichever candidate that was), over the training examples, with the policy's actions and
the raw detector alerts at the example where they happened: so one can see whether a
promotion or a reset paid off, and how long an alert went unanswered. Every metric is kept
as the worker keeps it (``models.scoring``), overall and over the rolling window.

It scores the predictions as served: right after a candidate is reset, the learner scores
the fresh model's own prediction instead, so the two can differ there. A duplicate example
(the training topic is written at least once) is skipped as the learner skips it, so the x
axis counts what the learner learned: the same numbers as the drift events' ``at_example``.
Data drift events are positioned by input offset, on no such axis: they are listed, not
drawn. It takes plain dicts; only ``read.read_report`` knows Kafka (and, for a pipeline
that learns per partition, turns its served records into examples, one "candidate" per
partition).

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

import dataclasses
import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streamlearn.models.learner import served_proba
from streamlearn.models.scoring import Scoring

__all__ = [
    "CandidateSummary", "DriftEvent", "Report", "ReportSummary", "build_report",
    "is_classification",
]

WINDOW = 1000
"""The learner's rolling window (``models.scoring.ROLLING_WINDOW``), so figures compare."""
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


class _Track:
    """One line of the chart: a candidate's (or the served) metrics, overall and rolling."""

    def __init__(self, scoring: Scoring) -> None:
        self.scorer = scoring.new()
        self.scored = 0
        self.last = 0
        """Number of the last example scored."""
        self.points: list[tuple[int, float]] = []

    def score(self, position: int, label: Any, prediction: Any, proba: Any) -> None:
        self.scorer.update(label, prediction, proba)
        self.scored += 1
        self.last = position

    def overall(self) -> float | None:
        """The primary metric over every example scored."""
        return self.scorer.score() if self.scored else None

    def rolling(self) -> float | None:
        """The primary metric over the last ``window`` examples scored."""
        return self.scorer.rolling_values()[0] if self.scored else None

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
    """The primary metric over every example it was scored on."""
    rolling: float | None
    """Over the last ``window`` examples it was scored on."""
    metrics: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    """Every metric: ``[overall, rolling]`` by name (the primary first)."""


@dataclass(frozen=True)
class ReportSummary:
    pipeline: str
    metric: str
    """The primary metric (``roc_auc``, ``accuracy``, ``mae``, ...)."""
    metrics: tuple[str, ...]
    """Every metric, the primary first."""
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
                 keep_ms: float | None = None, scoring: Scoring | None = None) -> None:
        self.pipeline = pipeline
        self.window = window
        self.max_points = max_points
        self.keep_ms = keep_ms
        """How long (label time) an event id is remembered to skip its duplicates; None:
        for ever. The learner remembers them for twice the label TTL."""
        self.scoring = None if scoring is None else dataclasses.replace(scoring, window=window)
        """The pipeline's metrics; None: decided by the first label (accuracy for a class,
        MAE and RMSE for a number)."""
        self.examples = self.skipped = self.duplicates = 0
        self.classification: bool | None = None
        """Decided by the first label (:func:`is_classification`)."""
        self.candidates: dict[str, _Track] = {}
        self.served: _Track | None = None
        self.events: list[DriftEvent] = []
        self.per_partition = False
        """The examples are a per-partition pipeline's served records: one line per
        partition's model (``read.read_report``)."""
        self.stride = 1
        """Lines are sampled every ``stride`` examples; doubled when they grow too long."""
        self._seen: set[str] = set()
        self._expiry: list[tuple[float, str]] = []
        self._watermark = -math.inf

    @property
    def names(self) -> tuple[str, ...]:
        return self.scoring.names if self.scoring is not None else ("accuracy",)

    @property
    def metric(self) -> str:
        """The primary metric."""
        return self.names[0]

    def _track(self) -> _Track:
        assert self.scoring is not None
        return _Track(self.scoring)

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
        if self.scoring is None:
            self.scoring = Scoring.default(None, self.classification, window=self.window)
        if self.served is None:
            self.served = self._track()
        predictions = record.get("predictions")
        predictions = predictions if isinstance(predictions, Mapping) else {}
        for name, served in predictions.items():
            self._score(self.candidates.get(str(name)), str(name), served, label)
        champion = record.get("champion")
        self._score(self.served, None,
                    predictions.get(champion) if isinstance(champion, str) else None, label)
        if self.examples % self.stride == 0:
            self._sample()

    def _score(self, track: _Track | None, name: str | None, served: Any, label: Any) -> None:
        """Score what was served for the example (nothing if there is nothing to score)."""
        if not isinstance(served, Mapping) or served.get("prediction") is None:
            return
        prediction = served["prediction"]
        if not self.classification:
            label, prediction = _finite(label), _finite(prediction)
            if label is None or prediction is None or not math.isfinite(label - prediction):
                return
        if track is None:
            assert name is not None
            track = self.candidates[name] = self._track()
        track.score(self.examples, label, prediction,
                    served_proba(served.get("proba"), label) if self.classification else None)

    def add_drift(self, record: Any) -> None:
        """Add one drift event (a record's JSON)."""
        if isinstance(record, Mapping):
            self.events.append(DriftEvent.parse(record))
        else:
            self.skipped += 1

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
        return [*self.candidates.values(), *([self.served] if self.served else [])]

    def _sample(self) -> None:
        for track in self._tracks():
            track.sample(self.examples)
        if self.examples // self.stride > self.max_points:
            self.stride *= 2
            for track in self._tracks():
                track.points = [p for p in track.points if p[0] % self.stride == 0]

    def line(self, track: _Track | None) -> tuple[list[int], list[float]]:
        """A track's sampled (x, rolling) points ending at its exact final value, with a
        NaN where it was not scored for longer than a sampling step (a gap in the line)."""
        if track is None:
            return [], []
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
        def of(name: str, track: _Track | None) -> CandidateSummary:
            if track is None:
                return CandidateSummary(name, 0, None, None)
            return CandidateSummary(name, track.scored, track.overall(), track.rolling(),
                                    track.scorer.summary() if track.scored else {})

        on_axis = Counter(e.action for e in self.events if e.on_training_axis)
        order = [*ACTIONS, *sorted(set(on_axis) - set(ACTIONS))]
        return ReportSummary(
            self.pipeline, self.metric, self.names, self.window, self.examples, self.skipped,
            self.duplicates, tuple(of(n, t) for n, t in self.candidates.items()),
            of("served", self.served), {a: on_axis[a] for a in order if on_axis[a]},
            sum(1 for e in self.events if not e.on_training_axis))


def build_report(pipeline: str, examples: Iterable[Any], drift_events: Iterable[Any],
                 window: int = WINDOW, keep_ms: float | None = None,
                 scoring: Scoring | None = None) -> Report:
    """A report of ``examples`` (training records' JSON, in topic order) and
    ``drift_events`` (drift records' JSON), scored with ``scoring`` (the pipeline's)."""
    report = Report(pipeline, window=window, keep_ms=keep_ms, scoring=scoring)
    for example in examples:
        report.add_example(example)
    for event in drift_events:
        report.add_drift(event)
    return report
