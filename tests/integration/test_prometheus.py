"""A real Prometheus scrapes a real worker: what a user's dashboard and alerts would show."""

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


def active_rule(port: int, name: str, timeout: float = 60) -> dict:
    """Alerting rule ``name`` once it has an active alert (pending or firing), or as it is
    at the deadline (its lastError says why not)."""
    deadline = time.monotonic() + timeout
    while True:
        rule = next(r for g in rule_groups(port) for r in g["rules"] if r["name"] == name)
        if rule["alerts"] or time.monotonic() > deadline:
            return rule
        time.sleep(1)


def strict_phishing(tmp_path: Path) -> Path:
    """The phishing example with an alert threshold its model cannot reach (its rolling
    ROC AUC is about 0.9 after 300 events) and 100 examples before it may alert."""
    text = EXAMPLE.read_text()
    strict = text.replace("    model=model,\n)", "    model=model,\n    alert_threshold=0.95,\n"
                                                 "    alert_min_examples=100,\n)")
    assert strict != text, "examples/phishing.py no longer ends its Pipeline with model=model"
    path = tmp_path / "phishing_strict.py"
    path.write_text(strict)
    return path


def test_prometheus_scrapes_predictions_and_alerts_on_the_primary_metric(
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
    start_worker(strict_phishing(tmp_path), name)
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
        # What the alert rule joins on: the pipeline's threshold of the primary's rolling
        # value, each metric's direction, and readiness (300 examples, both classes).
        threshold = query(prom_port, f"streamlearn_metric_threshold{selector}")
        assert [(s["metric"]["metric"], s["value"][1]) for s in threshold] == [
            ("rolling_roc_auc", "0.95")]
        better = query(prom_port, f"streamlearn_metric_bigger_is_better{selector}")
        assert {s["metric"]["metric"]: s["value"][1] for s in better} == dict.fromkeys(
            scores, "1")
        ready = query(prom_port, f"streamlearn_model_score_ready{selector}")
        assert [(s["metric"]["partition"], s["value"][1]) for s in ready] == [("0", "1")]
        latency = query(prom_port, "histogram_quantile(0.99, sum by (le) "
                                   f"(streamlearn_event_to_prediction_seconds_bucket{selector}))")
        assert latency and float(latency[0]["value"][1]) > 0
        alerts = {rule["name"] for g in rule_groups(prom_port) for rule in g["rules"]}
        assert "StreamlearnWorkerDown" in alerts and "StreamlearnDeadLetters" in alerts
        # The rolling ROC AUC is below the pipeline's threshold: the one rule for every
        # pipeline takes it up (pending: its `for` is 10m), and says what and how far.
        rule = active_rule(prom_port, "StreamlearnPrimaryMetricPastThreshold")
        assert (rule["health"], rule.get("lastError", "")) == ("ok", ""), rule  # omitempty
        [alert] = rule["alerts"]
        assert alert["state"] == "pending"
        assert {k: alert["labels"][k] for k in ("pipeline", "metric", "partition")} == {
            "pipeline": name, "metric": "rolling_roc_auc", "partition": "0"}
        assert float(alert["value"]) == scores["rolling_roc_auc"]
        rolling = f"{scores['rolling_roc_auc']:.4g}"
        assert alert["annotations"]["summary"].endswith(
            f": rolling_roc_auc is {rolling}, past its alert threshold 0.95"), alert
        assert query(prom_port, 'up{job="streamlearn"}')[0]["value"][1] == "1"
    finally:
        prom.terminate()
        prom.wait(timeout=30)
