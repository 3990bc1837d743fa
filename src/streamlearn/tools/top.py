"""``streamlearn top``: one worker's /metrics as a live terminal view.

Two scrapes some seconds apart give rates (counter deltas over the time between them) and
the latency quantiles of the events in between (histogram bucket deltas, interpolated the
way Prometheus' ``histogram_quantile`` does); the pipeline's metrics (prequential and
rolling; a rolling value past the alert's threshold in red), dead letters and each field's
drift state are read as they are. Parsing is prometheus_client's
own text parser; nothing here needs a Prometheus server.

>>> text = '''
... # TYPE streamlearn_events_total counter
... streamlearn_events_total{pipeline="p"} 1500.0
... '''
>>> before = parse(text.replace("1500.0", "500.0"), at=10.0)
>>> build_view("p", before, parse(text, at=12.0)).events_per_s
500.0
"""

from __future__ import annotations

import contextlib
import math
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError

__all__ = [
    "DriftRow",
    "MetricsUnavailable",
    "Scrape",
    "TopView",
    "build_view",
    "fetch",
    "histogram_quantile",
    "metrics_url",
    "parse",
    "render",
    "run_top",
]

Labels = dict[str, str]
_TIMEOUT_S = 5.0


class MetricsUnavailable(StreamlearnError):
    """The worker's /metrics cannot be read, or has nothing about the pipeline."""


@dataclass(frozen=True)
class Scrape:
    """The samples of one /metrics response, by sample name, and when it was taken."""

    at: float
    samples: dict[str, list[tuple[Labels, float]]]

    def select(self, name: str, pipeline: str, **match: str) -> list[tuple[Labels, float]]:
        return [(labels, value) for labels, value in self.samples.get(name, [])
                if labels.get("pipeline") == pipeline
                and all(labels.get(k) == v for k, v in match.items())]

    def total(self, name: str, pipeline: str, **match: str) -> float | None:
        found = self.select(name, pipeline, **match)
        return sum(value for _, value in found) if found else None


@dataclass(frozen=True)
class DriftRow:
    kind: str
    feature: str
    stability: float | None = None
    """The highest stability index (PSI) over the partitions, as last computed."""
    estimate: float | None = None
    """ADWIN's current mean (the error for concept, the value for data), highest partition."""
    detections: dict[str, int] = field(default_factory=dict)
    """Counts by ``"<detector> <level>"``."""


@dataclass(frozen=True)
class TopView:
    pipeline: str
    seconds: float
    events: float
    events_per_s: float | None
    predictions_per_s: float | None
    learned_per_s: float | None
    p50: float | None
    p99: float | None
    latency_since_start: bool
    """No event was predicted between the scrapes: the quantiles are over the worker's life."""
    scores: list[tuple[str, str, float]]
    """(partition, metric, value), e.g. ("0", "rolling_roc_auc", 0.94)."""
    dead_letters: dict[str, int]
    drift: list[DriftRow]
    thresholds: dict[str, tuple[float, bool]] = field(default_factory=dict)
    """The alert's threshold by metric (``rolling_<primary>``) and whether bigger is better."""
    ready: dict[str, bool] = field(default_factory=dict)
    """By partition: scored enough for the alert (``model_score_ready``)."""


def metrics_url(settings: Settings) -> str:
    if not settings.metrics_port:
        raise MetricsUnavailable("the worker's metrics are off (STREAMLEARN_METRICS_PORT=0): "
                                 "give --url")
    return f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            return str(response.read().decode())
    except (OSError, ValueError) as exc:
        raise MetricsUnavailable(
            f"cannot read {url} ({exc}): is the worker running? Give --url, or the "
            "STREAMLEARN_METRICS_HOST/PORT the worker was started with"
        ) from None


def parse(text: str, at: float) -> Scrape:
    samples: dict[str, list[tuple[Labels, float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), float(sample.value)))
    return Scrape(at, dict(samples))


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative ``(upper bound, count)`` buckets, as Prometheus does.

    Linear within the bucket that holds it (the first bucket starts at 0); in the +Inf
    bucket, the highest finite bound. None without observations.

    >>> histogram_quantile(0.5, [(0.1, 50), (1.0, 100), (math.inf, 100)])
    0.1
    >>> round(histogram_quantile(0.99, [(0.1, 50), (1.0, 100), (math.inf, 100)]), 3)
    0.982
    """
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def _rate(name: str, pipeline: str, before: Scrape | None, after: Scrape) -> float | None:
    if before is None or after.at <= before.at:
        return None
    now, then = after.total(name, pipeline), before.total(name, pipeline)
    if now is None or then is None:
        return None
    delta = now - then if now >= then else now  # a lower value: the worker restarted
    return delta / (after.at - before.at)


def _buckets(scrape: Scrape, pipeline: str) -> dict[float, float]:
    out: dict[float, float] = defaultdict(float)
    for labels, value in scrape.select("streamlearn_event_to_prediction_seconds_bucket",
                                       pipeline):
        out[float(labels["le"])] += value
    return out


def _latency(pipeline: str, before: Scrape | None, after: Scrape
             ) -> tuple[float | None, float | None, bool]:
    now = _buckets(after, pipeline)
    then = _buckets(before, pipeline) if before else {}
    recent = {le: count - then.get(le, 0.0) for le, count in now.items()}
    since_start = not recent or max(recent.values()) <= 0 or min(recent.values()) < 0
    chosen = now if since_start else recent
    items = list(chosen.items())
    return histogram_quantile(0.5, items), histogram_quantile(0.99, items), since_start


def _drift(pipeline: str, scrape: Scrape, features: Iterable[str]) -> list[DriftRow]:
    rows: dict[tuple[str, str], dict[str, Any]] = {("concept", ""): {}}
    rows.update({("data", name): {} for name in features})
    for labels, value in scrape.select("streamlearn_stability_index", pipeline):
        row = rows.setdefault((labels["kind"], labels["feature"]), {})
        row["stability"] = max(value, row.get("stability", value))
    for labels, value in scrape.select("streamlearn_drift_estimate", pipeline):
        row = rows.setdefault((labels["kind"], labels["feature"]), {})
        row["estimate"] = max(value, row.get("estimate", value))
    for labels, value in scrape.select("streamlearn_drift_detections_total", pipeline):
        row = rows.setdefault((labels["kind"], labels["feature"]), {})
        counts = row.setdefault("detections", {})
        key = f"{labels['detector']} {labels['level']}"
        counts[key] = counts.get(key, 0) + int(value)
    order = {"concept": 0, "data": 1, "prediction": 2, "label": 3}
    return [DriftRow(kind, feature, **values)
            for (kind, feature), values in sorted(rows.items(),
                                                  key=lambda kv: (order.get(kv[0][0], 9), kv[0]))]


def build_view(pipeline: str, before: Scrape | None, after: Scrape,
               features: Iterable[str] = ()) -> TopView:
    """What one frame shows, from two scrapes (``before`` None: no rates yet)."""
    p50, p99, since_start = _latency(pipeline, before, after)
    scores = sorted((labels["partition"], labels["metric"], value)
                    for labels, value in after.select("streamlearn_model_score", pipeline))
    better = {labels["metric"]: bool(value) for labels, value
              in after.select("streamlearn_metric_bigger_is_better", pipeline)}
    thresholds = {labels["metric"]: (value, better.get(labels["metric"], True))
                  for labels, value in after.select("streamlearn_metric_threshold", pipeline)}
    ready = {labels["partition"]: bool(value) for labels, value
             in after.select("streamlearn_model_score_ready", pipeline)}
    dead = {labels["reason"]: int(value)
            for labels, value in after.select("streamlearn_dead_letters_total", pipeline)
            if value}
    return TopView(
        pipeline=pipeline,
        seconds=after.at - before.at if before else 0.0,
        events=after.total("streamlearn_events_total", pipeline) or 0.0,
        events_per_s=_rate("streamlearn_events_total", pipeline, before, after),
        predictions_per_s=_rate("streamlearn_predictions_total", pipeline, before, after),
        learned_per_s=_rate("streamlearn_examples_learned_total", pipeline, before, after),
        p50=p50, p99=p99, latency_since_start=since_start,
        scores=scores, thresholds=thresholds, ready=ready,
        dead_letters=dict(sorted(dead.items())),
        drift=_drift(pipeline, after, features),
    )


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.3g} ms"


def render(view: TopView, url: str, psi_threshold: float) -> Group:
    """The frame: service numbers, accuracy per partition, dead letters, drift per field."""
    window = ("since the worker started" if view.latency_since_start
              else f"over the last {view.seconds:.3g} s")
    service = Table("events", "events/s", "predictions/s", "learned/s", "p50", "p99",
                    title=f"{view.pipeline} at {url}", title_justify="left")
    service.add_row(f"{view.events:.0f}", _num(view.events_per_s), _num(view.predictions_per_s),
                    _num(view.learned_per_s), _ms(view.p50), _ms(view.p99))
    scores = _scores(view)
    dead = Table("reason", "dead letters", title="dead letters", title_justify="left")
    for reason, count in view.dead_letters.items():
        dead.add_row(reason, str(count))
    if not view.dead_letters:
        dead.add_row("none", "0")
    drift = Table("kind", "feature", "stability index", "ADWIN mean", "detections",
                  title="drift", title_justify="left")
    for row in view.drift:
        psi = Text(_num(row.stability))
        if row.stability is not None and row.stability > psi_threshold:
            psi.stylize("bold red")
        detections = ", ".join(f"{k} x{v}" for k, v in sorted(row.detections.items()))
        drift.add_row(row.kind, row.feature or "(model error)", psi, _num(row.estimate),
                      Text(detections or "-"))
    return Group(service, Text(f"latency {window}", style="dim"), scores, dead, drift)


def _scores(view: TopView) -> Table:
    """A row per partition, a column per metric (the primary first) and its rolling value;
    a rolling value past the alert's threshold, once the model is ready, in red."""
    names = list(dict.fromkeys(m.removeprefix("rolling_") for _, m, _ in view.scores))
    primary = names[0] if names else ""
    # The catalog exports the primary first only by convention: the threshold names it.
    for metric in view.thresholds:
        primary = metric.removeprefix("rolling_")
    if primary in names:
        names.remove(primary)
        names.insert(0, primary)
    table = Table("partition", *(f"{kind}{name}" for name in names
                                 for kind in ("", "rolling ")),
                  title="model metrics (prequential, and rolling over the last 1000)",
                  title_justify="left")
    values: dict[str, dict[str, float]] = {}
    for partition, metric, value in view.scores:
        values.setdefault(partition, {})[metric] = value
    for partition, row in values.items():
        cells = []
        for name in names:
            for metric in (name, f"rolling_{name}"):
                shown = row.get(metric)
                text = Text("-" if shown is None else f"{shown:.4f}")
                limit = view.thresholds.get(metric)
                if (shown is not None and limit is not None and view.ready.get(partition)
                        and (shown < limit[0] if limit[1] else shown > limit[0])):
                    text.stylize("bold red")
                cells.append(text)
        table.add_row(partition, *cells)
    return table


def _frame(pipeline: str, url: str, before: Scrape | None, features: list[str]
           ) -> tuple[Scrape, TopView]:
    after = parse(fetch(url), time.monotonic())
    if not after.select("streamlearn_events_total", pipeline):
        there = sorted({labels.get("pipeline", "?")
                        for labels, _ in after.samples.get("streamlearn_events_total", [])})
        raise MetricsUnavailable(
            f"{url} has no metrics of pipeline {pipeline!r} (it has: "
            f"{', '.join(there) or 'none'}): give the worker's --name, or its --url")
    return after, build_view(pipeline, before, after, features)


def run_top(pipeline: str, url: str, features: list[str], interval: float, once: bool,
            psi_threshold: float, console: Console | None = None) -> None:
    """Scrape every ``interval`` seconds and redraw; ``once``: one frame from two scrapes."""
    console = console or Console()
    before, _ = _frame(pipeline, url, None, features)
    if once:
        time.sleep(interval)
        _, view = _frame(pipeline, url, before, features)
        console.print(render(view, url, psi_threshold))
        return
    with Live(console=console, auto_refresh=False) as live, contextlib.suppress(
            KeyboardInterrupt):
        while True:
            time.sleep(interval)
            try:
                before, view = _frame(pipeline, url, before, features)
                live.update(render(view, url, psi_threshold), refresh=True)
            except MetricsUnavailable as exc:  # a restarting worker: keep watching
                live.update(Text(str(exc), style="bold red"), refresh=True)
