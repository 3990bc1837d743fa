"""A real Prometheus scrapes a real worker: what a user's dashboard would show."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from streamlearn.tools.produce import ReplayOptions, replay
from streamlearn.tools.sources import iter_events

from .conftest import EXAMPLE, ROOT, free_port, worker_log


def query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]["result"]


def wait_for_value(port: int, promql: str, want: float, timeout: float = 60) -> float | None:
    deadline, value = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            result = query(port, promql)
            value = float(result[0]["value"][1]) if result else None
        except OSError:
            value = None
        if value == want:
            return value
        time.sleep(1)
    return value


def rule_groups(port: int) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5) as r:
        return json.load(r)["data"]["groups"]


def wait_for_rule(port: int, name: str, timeout: float = 30) -> dict:
    """Rule ``name`` once Prometheus has evaluated it (its health is "unknown" before)."""
    deadline = time.monotonic() + timeout
    while True:
        rule = next(r for g in rule_groups(port) for r in g["rules"] if r["name"] == name)
        if rule["health"] != "unknown" or time.monotonic() > deadline:
            return rule
        time.sleep(1)


def test_prometheus_scrapes_predictions_and_loads_the_alert_rules(
    kafka, name, topics, start_worker, worker_env, tmp_path: Path
):
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not on PATH: run `apt-get install prometheus`"
    metrics_port, prom_port = worker_env["STREAMLEARN_METRICS_PORT"], free_port()
    config = tmp_path / "prometheus.yml"
    shutil.copy(ROOT / "monitoring" / "alerts.yml", tmp_path / "alerts.yml")
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n"
        "  - job_name: streamlearn\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    topics(name)
    sent = replay(iter_events("river:Phishing", label_field="is_phishing"), kafka,
                  ReplayOptions(topic=name, limit=300))
    start_worker(EXAMPLE, name)
    prom = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        selector = f'{{pipeline="{name}"}}'
        got = wait_for_value(prom_port, f"sum(streamlearn_predictions_total{selector})", sent)
        assert got == sent, worker_log(tmp_path)
        # A boolean label: ROC AUC (primary) and accuracy, prequential and rolling.
        scores = {s["metric"]["metric"]: float(s["value"][1])
                  for s in query(prom_port, f"streamlearn_model_score{selector}")}
        assert scores.keys() == {"roc_auc", "accuracy", "rolling_roc_auc", "rolling_accuracy"}
        assert 0.5 < scores["roc_auc"] <= 1.0 and 0.5 < scores["accuracy"] <= 1.0
        # What the alert rule joins on: the threshold of the primary's rolling value, each
        # metric's direction, and readiness (300 examples, fewer than alert_min_examples).
        threshold = query(prom_port, f"streamlearn_metric_threshold{selector}")
        assert [(s["metric"]["metric"], s["value"][1]) for s in threshold] == [
            ("rolling_roc_auc", "0.7")]
        better = query(prom_port, f"streamlearn_metric_bigger_is_better{selector}")
        assert {s["metric"]["metric"]: s["value"][1] for s in better} == dict.fromkeys(
            scores, "1")
        ready = query(prom_port, f"streamlearn_model_score_ready{selector}")
        assert [(s["metric"]["partition"], s["value"][1]) for s in ready] == [("0", "0")]
        latency = query(prom_port, "histogram_quantile(0.99, sum by (le) "
                                   f"(streamlearn_event_to_prediction_seconds_bucket{selector}))")
        assert latency and float(latency[0]["value"][1]) > 0
        groups = rule_groups(prom_port)
        alerts = {rule["name"] for g in groups for rule in g["rules"]}
        assert "StreamlearnWorkerDown" in alerts and "StreamlearnDeadLetters" in alerts
        # The primary-metric rule evaluates on these series without error (its joins need
        # one threshold per pipeline), and stays silent for a model that is not ready.
        past = wait_for_rule(prom_port, "StreamlearnPrimaryMetricPastThreshold")
        assert (past["health"], past["lastError"]) == ("ok", ""), past
        assert past["state"] == "inactive" and past["alerts"] == [], past
        assert query(prom_port, 'up{job="streamlearn"}')[0]["value"][1] == "1"
    finally:
        prom.terminate()
        prom.wait(timeout=30)
