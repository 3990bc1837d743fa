"""`streamlearn top` on canned /metrics text: the numbers a user reads off the frame."""
# ruff: noqa: E501 (the canned exposition's lines are as long as the worker writes them)

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from prometheus_client import CollectorRegistry
from rich.console import Console

from streamlearn.monitoring import metrics
from streamlearn.tools.top import (
    MetricsUnavailable,
    build_view,
    fetch,
    histogram_quantile,
    parse,
    render,
    run_top,
)

# As a worker serves it (prometheus_client 0.2x text format, _created samples included),
# trimmed to what `top` reads, plus a second pipeline that must not leak into the view.
CANNED = """\
# HELP streamlearn_events_total Events consumed.
# TYPE streamlearn_events_total counter
streamlearn_events_total{{pipeline="fraud"}} {events}
streamlearn_events_total{{pipeline="other"}} 99999.0
# HELP streamlearn_events_created Events consumed.
# TYPE streamlearn_events_created gauge
streamlearn_events_created{{pipeline="fraud"}} 1.7958996391839888e+09
# HELP streamlearn_predictions_total Predictions produced.
# TYPE streamlearn_predictions_total counter
streamlearn_predictions_total{{model="LogReg",pipeline="fraud"}} {predictions}
# HELP streamlearn_examples_learned_total Labelled examples the model learned from.
# TYPE streamlearn_examples_learned_total counter
streamlearn_examples_learned_total{{model="LogReg",pipeline="fraud"}} {learned}
# HELP streamlearn_dead_letters_total Events sent to the dead-letter topic, by reason.
# TYPE streamlearn_dead_letters_total counter
streamlearn_dead_letters_total{{pipeline="fraud",reason="invalid_json"}} 12.0
streamlearn_dead_letters_total{{pipeline="fraud",reason="bad_type"}} 3.0
streamlearn_dead_letters_total{{pipeline="fraud",reason="too_large"}} 0.0
streamlearn_dead_letters_total{{pipeline="other",reason="too_large"}} 7.0
# HELP streamlearn_event_to_prediction_seconds Kafka record timestamp of an event to its prediction being produced.
# TYPE streamlearn_event_to_prediction_seconds histogram
streamlearn_event_to_prediction_seconds_bucket{{le="0.001",pipeline="fraud"}} {b1}
streamlearn_event_to_prediction_seconds_bucket{{le="0.01",pipeline="fraud"}} {b10}
streamlearn_event_to_prediction_seconds_bucket{{le="0.1",pipeline="fraud"}} {b100}
streamlearn_event_to_prediction_seconds_bucket{{le="+Inf",pipeline="fraud"}} {binf}
streamlearn_event_to_prediction_seconds_count{{pipeline="fraud"}} {binf}
streamlearn_event_to_prediction_seconds_sum{{pipeline="fraud"}} 4.5
# HELP streamlearn_model_score Prequential (test-then-train) score of a partition's model; rolling_* over the last 1000.
# TYPE streamlearn_model_score gauge
streamlearn_model_score{{metric="accuracy",model="LogReg",partition="1",pipeline="fraud"}} 0.91
streamlearn_model_score{{metric="rolling_accuracy",model="LogReg",partition="1",pipeline="fraud"}} 0.87
streamlearn_model_score{{metric="accuracy",model="LogReg",partition="0",pipeline="fraud"}} 0.93
streamlearn_model_score{{metric="rolling_accuracy",model="LogReg",partition="0",pipeline="fraud"}} 0.95
streamlearn_model_score{{metric="accuracy",model="LogReg",partition="0",pipeline="other"}} 0.1
# TYPE streamlearn_model_score_ready gauge
streamlearn_model_score_ready{{model="LogReg",partition="0",pipeline="fraud"}} 1.0
streamlearn_model_score_ready{{model="LogReg",partition="1",pipeline="fraud"}} 1.0
# TYPE streamlearn_metric_threshold gauge
streamlearn_metric_threshold{{metric="rolling_accuracy",pipeline="fraud"}} 0.9
# TYPE streamlearn_metric_bigger_is_better gauge
streamlearn_metric_bigger_is_better{{metric="accuracy",pipeline="fraud"}} 1.0
streamlearn_metric_bigger_is_better{{metric="rolling_accuracy",pipeline="fraud"}} 1.0
# HELP streamlearn_drift_detections_total Drift signals, by kind (concept, data, prediction, label), detector, feature ('' for concept) and level (drift, warning).
# TYPE streamlearn_drift_detections_total counter
streamlearn_drift_detections_total{{detector="ADWIN",feature="",kind="concept",level="drift",model="LogReg",pipeline="fraud"}} 2.0
streamlearn_drift_detections_total{{detector="DDM",feature="",kind="concept",level="warning",model="LogReg",pipeline="fraud"}} 5.0
streamlearn_drift_detections_total{{detector="ADWIN",feature="amount",kind="data",level="drift",model="LogReg",pipeline="fraud"}} 1.0
streamlearn_drift_detections_total{{detector="PSI",feature="amount",kind="data",level="drift",model="LogReg",pipeline="fraud"}} 1.0
# HELP streamlearn_drift_estimate ADWIN's current mean: of the model's error (concept) or of a numeric feature's value (data).
# TYPE streamlearn_drift_estimate gauge
streamlearn_drift_estimate{{detector="ADWIN",feature="",kind="concept",model="LogReg",partition="0",pipeline="fraud"}} 0.12
streamlearn_drift_estimate{{detector="ADWIN",feature="",kind="concept",model="LogReg",partition="1",pipeline="fraud"}} 0.08
streamlearn_drift_estimate{{detector="ADWIN",feature="amount",kind="data",model="LogReg",partition="0",pipeline="fraud"}} 41.5
# HELP streamlearn_stability_index Population stability index of a field's recent values against its reference (data: a feature; prediction; label).
# TYPE streamlearn_stability_index gauge
streamlearn_stability_index{{feature="amount",kind="data",partition="0",pipeline="fraud"}} 0.31
streamlearn_stability_index{{feature="amount",kind="data",partition="1",pipeline="fraud"}} 0.02
streamlearn_stability_index{{feature="prediction",kind="prediction",partition="0",pipeline="fraud"}} 0.04
"""
BEFORE = {"events": 1000.0, "predictions": 990.0, "learned": 980.0,
          "b1": 100.0, "b10": 900.0, "b100": 990.0, "binf": 990.0}
# 2 s later: 400 more events, 396 predicted (4 dead letters), the new ones all slower.
AFTER = {"events": 1400.0, "predictions": 1386.0, "learned": 1376.0,
         "b1": 100.0, "b10": 900.0, "b100": 1386.0, "binf": 1386.0}
FEATURES = ["amount", "merchant"]


def scrape(values: dict[str, float], at: float):
    return parse(CANNED.format(**values), at)


@pytest.fixture
def view():
    return build_view("fraud", scrape(BEFORE, 10.0), scrape(AFTER, 12.0), FEATURES)


def test_canned_text_uses_the_names_the_worker_exports():
    registry = CollectorRegistry()
    metrics.create(registry)
    exported = {s.name for family in registry.collect() for s in family.samples} | {
        f.name + suffix for f in registry.collect()
        for suffix in ("_total", "_created", "_bucket", "_count", "_sum", "")}
    assert set(scrape(AFTER, 0.0).samples) <= exported


def test_rates_are_counter_deltas_over_the_time_between_scrapes(view):
    assert view.events == 1400
    assert (view.events_per_s, view.predictions_per_s, view.learned_per_s) == (200, 198, 198)
    assert view.seconds == 2


def test_a_worker_restart_between_scrapes_counts_from_zero():
    restarted = {**AFTER, "events": 300.0}
    view = build_view("fraud", scrape(BEFORE, 10.0), scrape(restarted, 12.0))
    assert view.events_per_s == 150


def test_the_first_frame_has_no_rates():
    view = build_view("fraud", None, scrape(AFTER, 12.0))
    assert view.events_per_s is None and view.events == 1400


def test_latency_quantiles_are_of_the_events_between_the_scrapes(view):
    # All 396 new observations fell in (0.01, 0.1]: Prometheus interpolates within it.
    assert not view.latency_since_start
    assert view.p50 == pytest.approx(0.01 + 0.09 * 0.5)
    assert view.p99 == pytest.approx(0.01 + 0.09 * 0.99)


def test_latency_falls_back_to_the_workers_life_when_nothing_was_predicted():
    view = build_view("fraud", scrape(AFTER, 10.0), scrape(AFTER, 12.0))
    assert view.latency_since_start
    # rank 0.5 * 1386 = 693 lies in (0.001, 0.01], which holds 800 of them from 100.
    assert view.p50 == pytest.approx(0.001 + 0.009 * (693 - 100) / 800)


def test_histogram_quantile_matches_prometheus_edges():
    assert histogram_quantile(0.99, []) is None
    assert histogram_quantile(0.99, [(0.1, 0), (math.inf, 0)]) is None
    # Beyond the last finite bucket: its upper bound, as histogram_quantile() returns.
    assert histogram_quantile(0.99, [(0.1, 10), (1.0, 90), (math.inf, 100)]) == 1.0
    # The first bucket starts at 0.
    assert histogram_quantile(0.5, [(0.1, 10), (math.inf, 10)]) == pytest.approx(0.05)


def test_scores_per_partition_of_this_pipeline_only(view):
    assert view.scores == [
        ("0", "accuracy", 0.93), ("0", "rolling_accuracy", 0.95),
        ("1", "accuracy", 0.91), ("1", "rolling_accuracy", 0.87),
    ]


def test_dead_letters_by_reason_leave_out_zeros_and_other_pipelines(view):
    assert view.dead_letters == {"bad_type": 3, "invalid_json": 12}


def test_drift_state_per_field(view):
    rows = {(r.kind, r.feature): r for r in view.drift}
    assert [(r.kind, r.feature) for r in view.drift] == [
        ("concept", ""), ("data", "amount"), ("data", "merchant"), ("prediction", "prediction")]
    concept = rows["concept", ""]
    assert concept.estimate == 0.12  # the worse partition
    assert concept.detections == {"ADWIN drift": 2, "DDM warning": 5}
    amount = rows["data", "amount"]
    assert (amount.stability, amount.estimate) == (0.31, 41.5)
    assert amount.detections == {"ADWIN drift": 1, "PSI drift": 1}
    # Declared, categorical, nothing computed yet: shown, empty.
    assert rows["data", "merchant"] == type(amount)("data", "merchant")


def text_of(view, threshold: float = 0.25) -> str:
    console = Console(record=True, width=160)
    console.print(render(view, "http://w/metrics", threshold))
    return console.export_text()


def test_frame_shows_the_numbers(view):
    text = text_of(view)
    for expected in ("fraud at http://w/metrics", "1400", "200", "198", "55 ms", "99.1 ms",
                     "over the last 2 s", "rolling accuracy", "0.9500", "invalid_json",
                     "(model error)", "ADWIN drift x2, DDM warning x5", "0.31", "41.5"):
        assert expected in text, expected
    assert "other" not in text and "too_large" not in text


def test_stability_above_the_threshold_is_marked(view):
    console = Console(record=True, width=160, color_system="truecolor", force_terminal=True)
    console.print(render(view, "u", 0.25))
    marked = console.export_text(styles=True)
    assert "\x1b[1;31m0.31" in marked
    console = Console(record=True, width=160, color_system="truecolor", force_terminal=True)
    console.print(render(view, "u", 0.5))
    assert "\x1b[1;31m0.31" not in console.export_text(styles=True)


def test_a_rolling_metric_past_the_alert_threshold_is_marked(view):
    assert view.thresholds == {"rolling_accuracy": (0.9, True)}
    console = Console(record=True, width=160, color_system="truecolor", force_terminal=True)
    console.print(render(view, "u", 0.25))
    marked = console.export_text(styles=True)
    assert "\x1b[1;31m0.8700" in marked  # partition 1, below 0.9
    assert "\x1b[1;31m0.9500" not in marked


@pytest.fixture
def worker() -> Iterator[str]:
    """A /metrics endpoint that serves BEFORE, then AFTER."""
    pages = [CANNED.format(**BEFORE), CANNED.format(**AFTER)]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (pages.pop(0) if len(pages) > 1 else pages[0]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()


def test_once_prints_one_frame_from_two_scrapes(worker):
    console = Console(record=True, width=160)
    run_top("fraud", worker, FEATURES, interval=0.05, once=True, psi_threshold=0.25,
            console=console)
    text = console.export_text()
    assert "1400" in text and "invalid_json" in text and "amount" in text


def test_a_wrong_pipeline_name_lists_the_ones_there(worker):
    with pytest.raises(MetricsUnavailable, match=r"no metrics of pipeline 'frod'.*fraud, other"):
        run_top("frod", worker, [], interval=0, once=True, psi_threshold=0.25)


def test_an_unreachable_worker_says_what_to_set():
    with pytest.raises(MetricsUnavailable, match="STREAMLEARN_METRICS_HOST/PORT"):
        fetch("http://127.0.0.1:9/metrics")
