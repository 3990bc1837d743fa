"""Checks of the deployment files: docker-compose.yml, Dockerfile, monitoring/.

No Docker engine, Prometheus server or Grafana is needed: ``docker-compose config``
validates the compose file, ``promtool`` validates (and unit-tests) the Prometheus
config and alert rules, and the dashboard is checked against the metric names the
worker exports, so dashboards and alerts cannot silently drift from the code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamlearn.monitoring import catalog, metrics

try:
    import yaml
except ImportError:  # reported by _yaml() with the fix, instead of a bare collection error
    yaml = None

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "streamlearn.json"
DATASOURCES = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
ALERTS = MONITORING / "alerts.yml"
APT_HINT = "run `apt-get install docker-compose prometheus`"



def _series_names() -> set[str]:
    """Series the metrics module defines (on a fresh registry): the worker's real names."""
    registry = CollectorRegistry()
    metrics.create(registry)
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    return {f.name + s for f in registry.collect() for s in suffixes[f.type]}


def _label_names() -> set[str]:
    # The catalog declares every family's labels, sampled yet or not.
    return {label for m in catalog.CATALOG for label in m.labels}


SERIES = _series_names() | {"up"}
LABELS = _label_names() | {"le", "job", "instance"}

_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"`{name}` is not on PATH: {APT_HINT}"
    return path


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def _yaml(text: str) -> Any:
    assert yaml is not None, "PyYAML is missing: pip install pyyaml (the dev extra needs it)"
    return yaml.safe_load(text)


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression selects.

    >>> sorted(metric_names('sum by (le) (rate(a_bucket{x="y(z)"}[5m])) / b offset 1h > 1e3'))
    ['a_bucket', 'b']
    """
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", expr):
        is_call = expr[m.end() :].lstrip().startswith("(")
        if not is_call and m.group().lower() not in _PROMQL_WORDS:
            names.add(m.group())
    return names


def label_names(expr: str) -> set[str]:
    """Label names an expression matches on or aggregates by.

    >>> sorted(label_names('sum by (pipeline, le) (x{model!="a", metric=~"b"})'))
    ['le', 'metric', 'model', 'pipeline']
    """
    names = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr))
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        names.update(n.strip() for n in group.split(",") if n.strip())
    return names


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(ALERTS.read_text())["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> list[str]:
    return [t["expr"] for panel in dashboard()["panels"] for t in panel.get("targets", [])]


# --- docker-compose.yml and Dockerfile ------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    env = {**os.environ, "STREAMLEARN_MODEL_KEY": "compose-test-key"}
    result = _run(_tool("docker-compose"), "-f", "docker-compose.yml", "config", env=env)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return _yaml(result.stdout)


def test_compose_refuses_to_start_workers_without_a_model_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "STREAMLEARN_MODEL_KEY"}
    result = _run(_tool("docker-compose"), "-f", "docker-compose.yml", "config", env=env)
    assert result.returncode != 0
    assert "set STREAMLEARN_MODEL_KEY" in result.stderr


def test_compose_has_the_stack_and_wires_the_worker_to_kafka(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "worker", "prometheus", "grafana"} <= services.keys()
    worker = services["worker"]
    assert worker["environment"]["STREAMLEARN_BOOTSTRAP"] == "kafka:9092"
    assert worker["environment"]["STREAMLEARN_MODEL_KEY"] == "compose-test-key"
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    kafka = services["kafka"]
    assert "PLAINTEXT://kafka:9092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_compose_publishes_ports_on_loopback_only(compose: dict[str, Any]) -> None:
    published = []
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]
            published.append((name, host_ip))
    assert published, "expected Grafana and Prometheus to be reachable from the host"
    assert all(ip == "127.0.0.1" for _, ip in published), published


def test_compose_worker_scales(compose: dict[str, Any]) -> None:
    # `docker compose up --scale worker=N`: a fixed name or host port would collide.
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and not worker.get("ports"), worker
    assert worker["stop_grace_period"], "a scaled-down worker must have time to snapshot"


def test_compose_bind_mounts_exist(compose: dict[str, Any]) -> None:
    # A missing bind source makes Docker create an empty directory in its place, and
    # Prometheus or Grafana then start with no config and no error.
    sources = [
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if isinstance(volume, str) and volume.startswith("/")
    ]
    assert len(sources) >= 4
    assert [s for s in sources if not Path(s).exists()] == []


def test_dockerfile_copies_existing_paths_and_runs_the_example() -> None:
    text = (ROOT / "Dockerfile").read_text()
    copied = [src for line in re.findall(r"^COPY (.+)$", text, re.M) for src in line.split()[:-1]]
    assert [p for p in copied if not (ROOT / p).exists()] == []
    command = json.loads(re.search(r"^CMD (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert command[0] == "run" and (ROOT / command[1]).is_file(), command
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "benchmarks/results"} <= set(ignored)


# --- Prometheus ----------------------------------------------------------------------


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_accepts_config(config: str) -> None:
    result = _run(_tool("promtool"), "check", "config", f"monitoring/{config}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_rules() -> None:
    result = _run(_tool("promtool"), "check", "rules", "monitoring/alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_for_severity_and_text() -> None:
    for rule in alert_rules():
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]


# Input series (1m apart) -> expected alerts at eval_time, run by `promtool test rules`.
# Expected labels are the series' labels after aggregation plus the rule's severity.
DETECTIONS = ('streamlearn_drift_detections_total{{pipeline="p", model="m", kind="{kind}", '
              'detector="{detector}", feature="{feature}", level="{level}"}}')
CONCEPT_DRIFT = DETECTIONS.format(kind="concept", detector="ADWIN", feature="", level="drift")
DATA_DRIFT = DETECTIONS.format(kind="data", detector="ADWIN", feature="a", level="drift")
ESTIMATE = ('streamlearn_drift_estimate{{pipeline="p", model="m", kind="{kind}", '
            'detector="ADWIN", feature="{feature}", partition="0"}}')
ERROR_RATE = ESTIMATE.format(kind="concept", feature="")
STABILITY = ('streamlearn_stability_index{{pipeline="p", kind="{kind}", feature="{feature}", '
             'partition="0"}}')
LAG = ('streamlearn_consumer_lag{{pipeline="p", topic="p", partition="{partition}", '
       'instance="{instance}"}}')
COMMANDS_REFUSED = 'streamlearn_commands_refused_total{pipeline="p", reason="bad_signature"}'
LABEL_OUTCOME = 'streamlearn_labels_total{{pipeline="p", outcome="{outcome}"}}'
# A pipeline's metrics as a worker exports them (views.ScoreMetrics): every worker exports
# the threshold and directions, the one owning a partition its scores and readiness.
SCORE = ('streamlearn_model_score{{pipeline="p", model="m", metric="{metric}", '
         'partition="{partition}", instance="w0"}}')
READY = ('streamlearn_model_score_ready{{pipeline="p", model="m", partition="{partition}", '
         'instance="w0"}}')
THRESHOLD = 'streamlearn_metric_threshold{{pipeline="p", metric="{metric}", instance="{instance}"}}'
BIGGER = ('streamlearn_metric_bigger_is_better{{pipeline="p", metric="{metric}", '
          'instance="{instance}"}}')


def chosen(metrics: dict[str, int], threshold: tuple[str, str] | None) -> list[tuple[str, str]]:
    """The gauges two workers of pipeline p export for its metrics: each metric's direction
    (``{name: bigger_is_better}``, and its rolling_ form), the threshold (metric, value)."""
    series = []
    for instance in ("w0", "w1"):
        for name, bigger in metrics.items():
            for metric in (name, f"rolling_{name}"):
                series.append((BIGGER.format(metric=metric, instance=instance), f"{bigger}x30"))
        if threshold is not None:
            series.append((THRESHOLD.format(metric=threshold[0], instance=instance),
                           f"{threshold[1]}x30"))
    return series


ROC_AUC = chosen({"roc_auc": 1, "accuracy": 1}, ("rolling_roc_auc", "0.7"))
MAE = chosen({"mae": 0, "rmse": 0}, ("rolling_mae", "5"))
PAST = "StreamlearnPrimaryMetricPastThreshold"


def past(metric: str, partition: object = 0) -> dict[str, dict[str, list[dict[str, str]]]]:
    """The primary-metric alert firing for model m of pipeline p, and only it."""
    return {PAST: [{"severity": "warning", "pipeline": "p", "model": "m", "metric": metric,
                    "partition": str(partition), "instance": "w0"}]}


QUIET = [
    ('up{job="streamlearn", instance="worker:9108"}', "1x30"),
    ('streamlearn_events_total{pipeline="p"}', "0+100x30"),
    ('streamlearn_predictions_total{pipeline="p", model="m"}', "0+100x30"),
    ('streamlearn_dead_letters_total{pipeline="p", reason="invalid_json"}', "3x30"),
    ('streamlearn_event_to_prediction_seconds_bucket{pipeline="p", le="0.01"}', "0+100x30"),
    ('streamlearn_event_to_prediction_seconds_bucket{pipeline="p", le="1.0"}', "0+100x30"),
    ('streamlearn_event_to_prediction_seconds_bucket{pipeline="p", le="+Inf"}', "0+100x30"),
    *[(SCORE.format(metric=metric, partition=0), value)
      for metric, value in (("roc_auc", "0.5x30"), ("rolling_roc_auc", "0.9x30"))],
    *[(BIGGER.format(metric=metric, instance="w0"), "1x30")
      for metric in ("roc_auc", "rolling_roc_auc")],
    (THRESHOLD.format(metric="rolling_roc_auc", instance="w0"), "0.7x30"),
    (READY.format(partition=0), "1x30"),
    ('streamlearn_snapshots_refused_total{pipeline="p", reason="bad_digest"}', "0x30"),
    ('streamlearn_examples_learned_total{pipeline="p", model="m"}', "0+100x30"),
    (STABILITY.format(kind="data", feature="a"), "0.03+0.001x30"),
    (DETECTIONS.format(kind="concept", detector="DDM", feature="", level="warning"), "0+1x30"),
    (ERROR_RATE, "0.05-0.001x30"),
    (LAG.format(partition=0, instance="w0"), "50+10x30"),
    ('streamlearn_model_staleness_examples{pipeline="p", instance="w0"}', "3000x30"),
    ('streamlearn_learner_active{pipeline="p", instance="w0"}', "1x30"),
    ('streamlearn_learner_active{pipeline="p", instance="w1"}', "0x30"),
    (LABEL_OUTCOME.format(outcome="joined"), "0+100x30"),
    (LABEL_OUTCOME.format(outcome="orphan"), "0+2x30"),
    (LABEL_OUTCOME.format(outcome="late"), "0x30"),
]
ALERT_CASES = {
    "quiet when healthy": (
        QUIET,
        "20m",
        {
            "StreamlearnWorkerDown": [],
            "StreamlearnDeadLetters": [],
            "StreamlearnPredictionsStalled": [],
            "StreamlearnSlowPredictions": [],
            PAST: [],
            "StreamlearnSnapshotRefused": [],
            "StreamlearnConceptDrift": [],
            "StreamlearnDataDrift": [],
            "StreamlearnLabelsStalled": [],
            "StreamlearnConsumerLagGrowing": [],
            "StreamlearnModelStale": [],
            "StreamlearnNoActiveLearner": [],
            "StreamlearnLabelsUnmatched": [],
            "StreamlearnCommandRefused": [],
        },
    ),
    "command refused, the first": (
        [(COMMANDS_REFUSED, "_x5 1x10")],
        "8m",
        {"StreamlearnCommandRefused": [
            {"severity": "critical", "pipeline": "p", "reason": "bad_signature"}
        ]},
    ),
    "command refused, over after 10m": (
        [(COMMANDS_REFUSED, "_x5 1x20")],
        "20m",
        {"StreamlearnCommandRefused": []},
    ),
    "snapshot refused": (
        [('streamlearn_snapshots_refused_total{pipeline="p", reason="bad_signature"}',
          "0 0 1x10")],
        "5m",
        {"StreamlearnSnapshotRefused": [
            {"severity": "critical", "pipeline": "p", "reason": "bad_signature"}
        ]},
    ),
    "worker down": (
        [('up{job="streamlearn", instance="worker:9108"}', "0x10")],
        "5m",
        {
            "StreamlearnWorkerDown": [
                {"severity": "critical", "job": "streamlearn", "instance": "worker:9108"}
            ],
        },
    ),
    "no worker discovered": (
        [("unrelated_series", "0x10")],
        "5m",
        {
            "StreamlearnWorkerDown": [{"severity": "critical", "job": "streamlearn"}],
        },
    ),
    "dead letters": (
        [('streamlearn_dead_letters_total{pipeline="p", reason="not_object"}', "0+1x10")],
        "5m",
        {
            "StreamlearnDeadLetters": [
                {"severity": "warning", "pipeline": "p", "reason": "not_object"}
            ],
        },
    ),
    "predictions stop": (
        [
            ('streamlearn_events_total{pipeline="p"}', "0+100x30"),
            ('streamlearn_predictions_total{pipeline="p", model="m"}', "0+100x10 1000x20"),
        ],
        "20m",
        {"StreamlearnPredictionsStalled": [{"severity": "critical", "pipeline": "p"}]},
    ),
    "never predicted": (
        [('streamlearn_events_total{pipeline="p"}', "0+100x30")],
        "10m",
        {
            "StreamlearnPredictionsStalled": [{"severity": "critical", "pipeline": "p"}],
        },
    ),
    "slow predictions": (
        [
            ('streamlearn_event_to_prediction_seconds_bucket{pipeline="p", le="0.01"}', "0+90x30"),
            ('streamlearn_event_to_prediction_seconds_bucket{pipeline="p", le="1.0"}', "0+95x30"),
            ('streamlearn_event_to_prediction_seconds_bucket{pipeline="p", le="5.0"}', "0+100x30"),
            ('streamlearn_event_to_prediction_seconds_bucket{pipeline="p", le="+Inf"}', "0+100x30"),
        ],
        "15m",
        {"StreamlearnSlowPredictions": [{"severity": "warning", "pipeline": "p"}]},
    ),
    # ROC AUC, bigger is better: below 0.7 on partition 0, not on partition 1. The
    # prequential value, lower still, has no threshold.
    "primary metric below its threshold": (
        [*ROC_AUC, (SCORE.format(metric="roc_auc", partition=0), "0.5x30"),
         (SCORE.format(metric="rolling_roc_auc", partition=0), "0.9x5 0.55x25"),
         (SCORE.format(metric="rolling_roc_auc", partition=1), "0.9x30"),
         (READY.format(partition=0), "1x30"), (READY.format(partition=1), "1x30")],
        "20m",
        past("rolling_roc_auc"),
    ),
    "primary metric below its threshold, not for 10m yet": (
        [*ROC_AUC, (SCORE.format(metric="rolling_roc_auc", partition=0), "0.9x5 0.55x25"),
         (READY.format(partition=0), "1x30")],
        "12m",
        {PAST: []},
    ),
    # MAE, smaller is better: above 5 alerts (the global learner's partition).
    "error metric above its threshold": (
        [*MAE, (SCORE.format(metric="rolling_mae", partition="global"), "7x30"),
         (SCORE.format(metric="rolling_rmse", partition="global"), "9x30"),
         (READY.format(partition="global"), "1x30")],
        "15m",
        past("rolling_mae", "global"),
    ),
    "error metric below its threshold": (
        [*MAE, (SCORE.format(metric="rolling_mae", partition="global"), "3x30"),
         (SCORE.format(metric="rolling_rmse", partition="global"), "9x30"),
         (READY.format(partition="global"), "1x30")],
        "15m",
        {PAST: []},
    ),
    # Untrained, or one class in the window (ROC AUC 0): the worker says not ready.
    "primary metric below its threshold, model not ready": (
        [*ROC_AUC, (SCORE.format(metric="rolling_roc_auc", partition=0), "0x30"),
         (READY.format(partition=0), "0x30")],
        "15m",
        {PAST: []},
    ),
    # Readiness is per partition: another partition's does not count.
    "primary metric below its threshold, ready only elsewhere": (
        [*ROC_AUC, (SCORE.format(metric="rolling_roc_auc", partition=0), "0.3x30"),
         (READY.format(partition=0), "0x30"),
         (SCORE.format(metric="rolling_roc_auc", partition=1), "0.9x30"),
         (READY.format(partition=1), "1x30")],
        "15m",
        {PAST: []},
    ),
    "idle pipeline: a threshold, no score": (
        ROC_AUC,
        "15m",
        {PAST: []},
    ),
    "primary metric above its threshold": (
        [*ROC_AUC, (SCORE.format(metric="rolling_roc_auc", partition=0), "0.75x30"),
         (SCORE.format(metric="rolling_accuracy", partition=0), "0.4x30"),
         (READY.format(partition=0), "1x30")],
        "15m",
        {PAST: []},
    ),
    # Log loss has no default threshold (its scale is the data's): no threshold gauge.
    "no threshold": (
        [*chosen({"log_loss": 0}, None),
         (SCORE.format(metric="rolling_log_loss", partition=0), "9x30"),
         (READY.format(partition=0), "1x30")],
        "15m",
        {PAST: []},
    ),
    # A detection series first appears at 1 (increase() alone would miss it).
    "concept drift, first detection": (
        [(CONCEPT_DRIFT, "_x10 1x20"), (ERROR_RATE, "0.02x10 0.2x20")],
        "15m",
        {"StreamlearnConceptDrift": [{"severity": "warning", "pipeline": "p", "model": "m"}]},
    ),
    "concept drift, detected again": (
        [(CONCEPT_DRIFT, "1x20 2x10"), (ERROR_RATE, "0.02x20 0.2x10")],
        "25m",
        {"StreamlearnConceptDrift": [{"severity": "warning", "pipeline": "p", "model": "m"}]},
    ),
    "concept drift, over after 15m": (
        [(CONCEPT_DRIFT, "_x10 1x40"), (ERROR_RATE, "0.02x10 0.2x40")],
        "30m",
        {"StreamlearnConceptDrift": []},
    ),
    # ADWIN also fires when the error falls: a model still converging is not drift.
    "concept detection while the error falls": (
        [(CONCEPT_DRIFT, "_x10 1x20"), (ERROR_RATE, "0.05x10 0.01x20")],
        "15m",
        {"StreamlearnConceptDrift": []},
    ),
    # Seen live: after ADWIN's cut the estimate of a converging model drops to 0 and climbs
    # back while the detection is still recent. Here the window's start also missed a
    # scrape, so a trend over the window would read "the error rose"; it is below what it
    # was before the detection.
    "concept detection, then the estimate climbs back": (
        [
            (CONCEPT_DRIFT, "_x17 1x20"),
            (ERROR_RATE, "0.011x15 _ 0 0 0.0015 0.0034 0.0035 0.005 0.0049 0.0042 0.0046x10"),
        ],
        "31m",
        {"StreamlearnConceptDrift": []},
    ),
    "concept drift warning only": (
        [
            (DETECTIONS.format(kind="concept", detector="DDM", feature="", level="warning"),
             "_x10 1x20"),
            (ERROR_RATE, "0.02x10 0.2x20"),
        ],
        "15m",
        {"StreamlearnConceptDrift": []},
    ),
    "data drift, stability index": (
        [
            (STABILITY.format(kind="data", feature="a"), "0.05+0.001x10 0.6+0.01x20"),
            (STABILITY.format(kind="data", feature="b"), "0.05+0.001x30"),
        ],
        "22m",
        {"StreamlearnDataDrift": [{"severity": "warning", "pipeline": "p", "feature": "a"}]},
    ),
    "data drift, stability index not for 5m yet": (
        [(STABILITY.format(kind="data", feature="a"), "0.05+0.001x10 0.6+0.01x20")],
        "17m",
        {"StreamlearnDataDrift": []},
    ),
    # One index over the last few events, left standing when the events stop.
    "data drift, one stability index standing": (
        [(STABILITY.format(kind="data", feature="a"), "0.05+0.001x10 0.6x20")],
        "22m",
        {"StreamlearnDataDrift": []},
    ),
    "data drift, ADWIN on a feature": (
        [(DATA_DRIFT, "_x10 1x20")],
        "17m",
        {"StreamlearnDataDrift": [{"severity": "warning", "pipeline": "p", "feature": "a"}]},
    ),
    "prediction drift is not data drift": (
        [(STABILITY.format(kind="prediction", feature="prediction"), "0.6+0.01x30")],
        "20m",
        {"StreamlearnDataDrift": []},
    ),
    "labels stall": (
        [
            ('streamlearn_predictions_total{pipeline="p", model="m"}', "0+100x40"),
            ('streamlearn_examples_learned_total{pipeline="p", model="m"}', "0+100x10 1000x30"),
        ],
        "27m",
        {"StreamlearnLabelsStalled": [{"severity": "warning", "pipeline": "p", "model": "m"}]},
    ),
    "labels stall, not for 5m yet": (
        [
            ('streamlearn_predictions_total{pipeline="p", model="m"}', "0+100x40"),
            ('streamlearn_examples_learned_total{pipeline="p", model="m"}', "0+100x10 1000x30"),
        ],
        "22m",
        {"StreamlearnLabelsStalled": []},
    ),
    "labels and predictions stop together": (
        [
            ('streamlearn_predictions_total{pipeline="p", model="m"}', "0+100x10 1000x30"),
            ('streamlearn_examples_learned_total{pipeline="p", model="m"}', "0+100x10 1000x30"),
        ],
        "27m",
        {"StreamlearnLabelsStalled": []},
    ),
    # Two workers report partition 0 (a rebalance): counted once. 20000 and growing.
    "consumer lag grows": (
        [
            (LAG.format(partition=0, instance="w0"), "0+1000x30"),
            (LAG.format(partition=0, instance="w1"), "0+1000x30"),
            (LAG.format(partition=1, instance="w1"), "0x30"),
        ],
        "20m",
        {"StreamlearnConsumerLagGrowing": [{"severity": "warning", "pipeline": "p"}]},
    ),
    "consumer lag above the threshold but not growing": (
        [(LAG.format(partition=0, instance="w0"), "50000-100x30")],
        "20m",
        {"StreamlearnConsumerLagGrowing": []},
    ),
    "consumer lag grows, duplicate reports below the threshold": (
        [
            (LAG.format(partition=0, instance="w0"), "0+300x30"),
            (LAG.format(partition=0, instance="w1"), "0+300x30"),
        ],
        "25m",
        {"StreamlearnConsumerLagGrowing": []},
    ),
    "model stale": (
        [('streamlearn_model_staleness_examples{pipeline="p", instance="w1"}', "0x5 80000x30")],
        "20m",
        {"StreamlearnModelStale": [{"severity": "warning", "pipeline": "p", "instance": "w1"}]},
    ),
    "model stale, not for 10m yet": (
        [('streamlearn_model_staleness_examples{pipeline="p", instance="w1"}', "0x5 80000x30")],
        "12m",
        {"StreamlearnModelStale": []},
    ),
    "no active learner": (
        [
            ('streamlearn_learner_active{pipeline="p", instance="w0"}', "1x3 _x20"),
            ('streamlearn_learner_active{pipeline="p", instance="w1"}', "0x20"),
        ],
        "15m",
        {"StreamlearnNoActiveLearner": [{"severity": "critical", "pipeline": "p"}]},
    ),
    "no learner metrics at all (inline learning)": (
        [('streamlearn_events_total{pipeline="p"}', "0+100x30")],
        "15m",
        {"StreamlearnNoActiveLearner": []},
    ),
    "labels orphaned": (
        [
            (LABEL_OUTCOME.format(outcome="joined"), "0+100x30"),
            (LABEL_OUTCOME.format(outcome="orphan"), "0+60x30"),
            (LABEL_OUTCOME.format(outcome="duplicate"), "0+500x30"),
        ],
        "20m",
        {"StreamlearnLabelsUnmatched": [{"severity": "warning", "pipeline": "p"}]},
    ),
    "labels all late, none joined": (
        [(LABEL_OUTCOME.format(outcome="late"), "0+10x30")],
        "15m",
        {"StreamlearnLabelsUnmatched": [{"severity": "warning", "pipeline": "p"}]},
    ),
}


def _promtool_test(tmp_path: Path, series: list[tuple[str, str]],
                   alert_tests: list[dict[str, Any]], annotated: str | None = None) -> None:
    """`promtool test rules` of alerts.yml on ``series`` (1m apart). Annotations are left
    out but for rule ``annotated``: promtool demands their rendered text verbatim, and
    `check rules` already validates their templates."""
    rules = _yaml(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule["alert"] != annotated:
                rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(json.dumps(rules))
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": alert_tests,
            }
        ],
    }
    (tmp_path / "test.yml").write_text(json.dumps(test))
    result = subprocess.run(
        [_tool("promtool"), "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", ALERT_CASES)
def test_alert_fires_exactly_when_it_should(case: str, tmp_path: Path) -> None:
    series, eval_time, expected = ALERT_CASES[case]
    _promtool_test(tmp_path, series, [
        {
            "eval_time": eval_time,
            "alertname": name,
            "exp_alerts": [{"exp_labels": labels} for labels in alerts],
        }
        for name, alerts in expected.items()
    ])


def test_primary_metric_alert_tells_the_metric_its_value_and_threshold(tmp_path: Path) -> None:
    series = [*MAE, (SCORE.format(metric="rolling_mae", partition=3), "7.25x30"),
              (READY.format(partition=3), "1x30")]
    [labels] = past("rolling_mae", 3)[PAST]
    _promtool_test(tmp_path, series, [{
        "eval_time": "15m",
        "alertname": PAST,
        "exp_alerts": [{
            "exp_labels": labels,
            "exp_annotations": {
                "summary": "p/m: rolling_mae is 7.25, past its alert threshold 5",
                "description": (
                    "The rolling_mae of model m (partition 3) of pipeline p is 7.25 and has "
                    "stayed past the pipeline's alert threshold 5 (below it for a metric "
                    "where bigger is better, above it for an error metric) for 10 minutes: "
                    "the data may have drifted, or labels are wrong. The threshold is "
                    "Pipeline(alert_threshold=)."),
            },
        }],
    }], annotated=PAST)


# --- Grafana and metric names --------------------------------------------------------


def test_dashboard_is_valid_and_uses_the_provisioned_datasource() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 39
    uids = {ds["uid"] for ds in _yaml(DATASOURCES.read_text())["datasources"]}
    refs = [p["datasource"] for p in board["panels"]]
    refs += [t["datasource"] for p in board["panels"] for t in p["targets"]]
    refs += [v["datasource"] for v in board["templating"]["list"] if "datasource" in v]
    assert {ref["uid"] for ref in refs} <= uids
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses every expression once Grafana's variables are filled in.
    exprs = [
        e.replace("$__rate_interval", "1m").replace("$pipeline", ".*") for e in dashboard_exprs()
    ]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:expr{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    (tmp_path / "dashboard_rules.yml").write_text(json.dumps(rules))
    result = subprocess.run(
        [_tool("promtool"), "check", "rules", "dashboard_rules.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_queries_use_only_exported_metrics_and_labels(source: str) -> None:
    exprs = dashboard_exprs() if source == "dashboard" else [r["expr"] for r in alert_rules()]
    assert exprs
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        assert names <= SERIES, f"unknown metric {names - SERIES} in {expr!r}"
        assert label_names(expr) <= LABELS, f"unknown label in {expr!r}"
    # Backstop for places the parser above does not read (e.g. template variables).
    text = DASHBOARD.read_text() if source == "dashboard" else ALERTS.read_text()
    assert set(re.findall(r"streamlearn_\w+", text)) <= SERIES


def test_metric_name_check_catches_a_drifted_name() -> None:
    drifted = 'sum(rate(streamlearn_event_total{pipeline="p"}[5m]))'
    assert metric_names(drifted) - SERIES == {"streamlearn_event_total"}
