"""``streamlearn report``: how each candidate model scored over time, and what drift did.

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
drawn. The core takes plain dicts; only :func:`read_report` knows Kafka.

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

import base64
import heapq
import html
import math
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from streamlearn.errors import StreamlearnError

if TYPE_CHECKING:
    from streamlearn.pipeline import Pipeline

__all__ = [
    "CandidateSummary", "DriftEvent", "Report", "ReportSummary", "build_report",
    "is_classification", "read_report", "write_html", "write_png",
]

WINDOW = 1000
"""The learner's rolling window (``models.online.ROLLING_WINDOW``), so figures compare."""
MAX_POINTS = 2000
"""Points per line at most: enough for a 10-inch chart, whatever the topic's length."""
ACTIONS = ("alert", "reset", "challenge", "promote", "retire", "switch", "rollback")
SERVING_CHANGES = frozenset({"promote", "switch", "rollback"})
"""Actions that change what is served: drawn solid; other actions dashed."""
MAX_MARK_LABELS = 25
"""Actions labelled on the chart at most: past that the labels would hide the lines."""
MAX_TABLE_ROWS = 1000
PROGRESS_EVERY = 1000


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


def _plain(text: str) -> str:
    """``text`` as matplotlib shows it literally (``$`` would start mathtext, which fails
    to draw on bad input; a leading ``_`` would hide a legend entry)."""
    text = text.replace("$", r"\$")
    return f" {text}" if text.startswith("_") else text


def write_png(report: Report, path: str | Path) -> Path:
    """The chart: each candidate's rolling metric, the served one thicker, drift actions as
    vertical lines and raw alerts as ticks along the bottom."""
    # The Agg canvas directly, not pyplot: no process-wide backend switch, no figure to close.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # Served underneath, wide and dark: the champion's own line stays visible on top of it.
    ax.plot(*report.line(report.served), color="black", linewidth=4.5, alpha=0.4, zorder=1,
            label="served (champion)")
    for name, track in report.candidates.items():
        ax.plot(*report.line(track), linewidth=1.2, zorder=2, label=_plain(name))
    _mark_events(ax, report)
    if not report.served.scored and not report.candidates:
        ax.text(0.5, 0.5, "no scored examples", transform=ax.transAxes, ha="center")
    ax.set_xlim(0, max(report.examples, 1))
    ax.set_xlabel("training example")
    ax.set_ylabel(f"rolling {report.metric} (window {report.window})")
    ax.set_title(_plain(f"{report.pipeline}: {report.metric} of each candidate"))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return Path(path)


def _mark_events(ax: Any, report: Report) -> None:
    events = [e for e in report.events
              if e.on_training_axis and 1 <= (e.at_example or 0) <= report.examples]
    at_x = ax.get_xaxis_transform()  # x in examples, y in axes fractions
    alerts = [e.at_example for e in events if e.action == "alert"]
    if alerts:
        ax.plot(alerts, [0.015] * len(alerts), linestyle="none", marker="|", markersize=9,
                color="black", transform=at_x, label=f"drift alert ({len(alerts)})")
    actions = [e for e in events if e.action != "alert"]
    legend = {True: "promote / switch / rollback", False: "reset / challenge / retire"}
    for i, event in enumerate(actions):
        serving = event.action in SERVING_CHANGES
        ax.axvline(event.at_example, color="tab:red" if serving else "grey",
                   linestyle="-" if serving else "--", linewidth=1.0, alpha=0.8,
                   label=legend.pop(serving, "_nolegend_"))
        if i < MAX_MARK_LABELS:
            target = f" {event.target}" if event.target else ""
            ax.text(event.at_example, 0.97, _plain(f"{event.action}{target} "),
                    transform=at_x, rotation=90, ha="right", va="top", fontsize=7,
                    color="dimgray")


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.served { font-weight: bold; } .note { color: #555; }
"""


def _figure(metric: str, value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if metric == "accuracy" else f"{value:.4g}"


def _table(table_id: str, head: list[str], rows: Iterable[tuple[str, list[str]]],
           numeric: set[int]) -> str:
    """A table of escaped texts, rows given as (class, cells); ``numeric`` columns align
    right."""
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join(
        (f'<tr class="{css}">' if css else "<tr>")
        + "".join(f'<td{" class=n" if i in numeric else ""}>{html.escape(text)}</td>'
                  for i, text in enumerate(cells)) + "</tr>"
        for css, cells in rows)
    return f'<table id="{table_id}"><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table>'


def _event_cells(e: DriftEvent) -> list[str]:
    return ["" if e.at_example is None else f"{e.at_example:,}", e.model, e.kind,
            f"{e.detector} / {e.level}" if e.level else e.detector, e.action,
            f"{e.source} → {e.target}" if e.source or e.target else "", e.reason]


def write_html(report: Report, path: str | Path, png_path: str | Path) -> Path:
    """A self-contained page: the chart (``png_path``, embedded), the candidates' figures
    and the drift events. Record contents are escaped, and the page's policy forbids
    scripts, so a hostile reason or name shows as text."""
    s = report.summary()
    name = html.escape(report.pipeline)
    image = base64.b64encode(Path(png_path).read_bytes()).decode("ascii")
    alt = html.escape(f"Rolling {s.metric} of each candidate of {report.pipeline} over the "
                      "training examples, with drift actions marked")
    candidates = _table(
        "candidates", ["candidate", "examples scored", f"{s.metric} overall",
                       f"rolling {s.metric} (last {s.window})"],
        [("served" if c is s.served else "", [c.name, f"{c.scored:,}",
          _figure(s.metric, c.overall), _figure(s.metric, c.rolling)])
         for c in (*s.candidates, s.served)], {1, 2, 3})
    events = _table("drift", ["at example", "model", "kind", "detector / level", "action",
                              "from → to", "reason"],
                    [("", _event_cells(e)) for e in report.events[:MAX_TABLE_ROWS]], {0})
    more = len(report.events) - MAX_TABLE_ROWS
    if more > 0:
        events += f'<p class="note">{more:,} more events not listed.</p>'
    counts = ", ".join(f"{a} {n:,}" for a, n in s.actions.items()) or "none"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>streamlearn report: {name}</title><style>{STYLE}</style></head>
<body><h1>streamlearn report: {name}</h1>
<p>{s.examples:,} training examples, scored by {s.metric} ({s.duplicates:,} duplicates and
{s.skipped:,} unreadable records skipped).</p>
<img src="data:image/png;base64,{image}" alt="{alt}">
<h2>Candidates</h2>{candidates}
<h2>Drift events</h2><p>Actions on the chart: {html.escape(counts)}; data drift events:
{s.data_events:,} (positioned by input offset, not by training example: listed, not
drawn).</p>{events}
</body></html>
"""
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)


def _decoded(pairs: Iterable[tuple[bytes | None, bytes | None]],
             progress: Callable[[int], None] | None) -> Iterator[Any]:
    """Each record's JSON (None if it is none), telling ``progress`` how many were read."""
    count = 0
    for _key, value in pairs:
        try:
            record = orjson.loads(value) if value is not None else None
        except orjson.JSONDecodeError:
            record = None
        yield record
        count += 1
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    if progress is not None and count % PROGRESS_EVERY:
        progress(count % PROGRESS_EVERY)


def read_report(spec: Pipeline, consumer_config: dict[str, Any], window: int = WINDOW,
                progress: Callable[[int], None] | None = None) -> Report:
    """The report of what ``spec``'s training and drift topics hold now, read from the
    beginning to their end offsets; ``progress(n)`` is told of every ``n`` records read."""
    from streamlearn.streams.snapshots import records

    report = Report(spec.name, window=window, keep_ms=2 * spec.label_ttl_ms)
    for record in _decoded(records(consumer_config, spec.training_topic), progress):
        report.add_example(record)
    if not report.examples:
        unread = f" ({report.skipped:,} records there are not examples)" if report.skipped else ""
        raise StreamlearnError(
            f"no training examples on {spec.training_topic} yet{unread}: a report needs "
            f'global learning (learning="global", or labels on {spec.labels_topic})')
    for record in _decoded(records(consumer_config, spec.drift_topic), progress):
        report.add_drift(record)
    return report
