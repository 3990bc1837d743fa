"""Dashboards and drift alerts that run here: real workers, a real Prometheus, a real browser.

One stack for the module, on the session broker: three workers of the drifting test
pipeline (a seeded stream whose feature ``a`` shifts at event 3,000 and whose label rule
flips at 4,000; a stationary stream of the same length; an idle pipeline), a worker of
the candidates pipeline (two models and the challenger policy, labels on their own topic,
the concept flipping at 2,000 as in ``test_candidates``), and one
Prometheus scraping them every second with the console templates of ``monitoring/consoles``
and ``monitoring/alerts.yml`` compressed 60 times in time (``[15m]`` -> ``[15s]``, ``for: 5m``
-> ``5s``), as the worker's stability index runs every 300 events (about a second here).
Events are paced at 250/s so that drift unfolds over seconds of scrapes, not one batch.

Set STREAMLEARN_UPDATE_SCREENSHOT=1 to also write the console page to docs/dashboard.png.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kafka import KafkaProducer

from streamlearn.config import Settings
from streamlearn.kafka.admin import create_topics
from streamlearn.spec.pipeline import Pipeline, load_pipeline
from streamlearn.spec.topics import topic_configs
from streamlearn.tools.top import MetricsUnavailable, fetch, parse

from .conftest import MODEL_KEY, ROOT, SESSION_TIMEOUT_S, free_port
from .test_candidates import CANDIDATES, EVENTS, FLIP_AT
from .test_candidates import stream as candidates_stream
from .test_drift import DRIFTING, N, drifting_stream, offline_positions
from .topics import wait_until

TIME_SCALE = 60  # alert windows and `for` durations are divided by this
RATE = 250.0  # events/s of each stream
BAD_EVERY = 50  # one invalid JSON record after every 50th drifting event: dead letters
RATE_WINDOW = "5s"  # Grafana's $__rate_interval at a 1 s scrape (4 x scrape, rounded up)
CONSOLE = "/consoles/streamlearn.html"
DRIFT_ALERTS = {"StreamlearnConceptDrift", "StreamlearnDataDrift", "StreamlearnLabelsStalled"}
PAST = "StreamlearnPrimaryMetricPastThreshold"
GRAPH_TITLES = [
    "Model metrics", "Event-to-prediction latency", "Throughput", "Dead letters",
    "Stability index (PSI) per field, 0.25 = large shift",
    "Drift detections (since the worker started)", "Model error, ADWIN's mean (concept)",
    "Feature means, ADWIN's (data)", "Alerts (pending and firing)",
]
ROLES = ("drifting", "stationary", "idle", "candidates")
PIPELINES = {"candidates": CANDIDATES}
"""Each role's pipeline file; the others run DRIFTING."""
CANDIDATE_PANELS = ("streamlearn_candidate_score", "streamlearn_policy_actions_total")
"""Queries only a pipeline with candidates answers: checked against that one."""


def stationary_stream(seed: int) -> list[dict]:
    """``drifting_stream``'s first regime for all N events: nothing shifts."""
    rng = random.Random(seed)
    events = []
    for i in range(N):
        a, b = rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)
        events.append({"event_id": f"s-{i}", "a": a, "b": b, "y": a + b > 0})
    return events


def compress(duration: str) -> str:
    """A Prometheus duration divided by TIME_SCALE: ``15m`` -> ``15s``."""
    number, unit = int(duration[:-1]), duration[-1]
    seconds = number * {"s": 1, "m": 60, "h": 3600}[unit]
    return f"{max(seconds // TIME_SCALE, 1) if seconds else 0}s"


def compressed_rules() -> dict[str, Any]:
    rules = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = compress(rule["for"])
            rule["expr"] = re.sub(r"(\[|offset )(\d+[smh])",
                                  lambda m: m.group(1) + compress(m.group(2)), rule["expr"])
    return rules


def top_level_branches(expr: str, operator: str = "or") -> list[str]:
    """``A or B`` -> [A, B], splitting only outside parentheses.

    >>> top_level_branches("sum(x or y) > 0 or z")
    ['sum(x or y) > 0', 'z']
    """
    parts, depth, start = [], 0, 0
    for m in re.finditer(rf"[()]|\s{operator}\s", expr):
        token = m.group()
        depth += {"(": 1, ")": -1}.get(token, 0)
        if token.strip() == operator and depth == 0:
            parts.append(expr[start:m.start()].strip())
            start = m.end()
    return [*parts, expr[start:].strip()]


@dataclass
class Stack:
    prometheus: str
    names: dict[str, str]
    targets: dict[str, str]
    specs: dict[str, Pipeline]
    streams: dict[str, list[dict]]
    started: float
    tmp: Path
    labels: list[dict] = field(default_factory=list)
    """The candidates stream's labels (for ``<name>.labels``)."""
    producer: threading.Thread | None = None
    errors: list[BaseException] = field(default_factory=list)
    streamed: bool = False

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.prometheus}/api/v1/{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def history(self, promql: str) -> list[dict]:
        """Every series ``promql`` had since the stack started, one point a second."""
        result = self.api("query_range", query=promql, start=f"{self.started:.3f}",
                          end=f"{time.time():.3f}", step="1")["result"]
        return [s for s in result if any(not math.isnan(float(v)) for _, v in s["values"])]

    def alerts(self) -> list[dict]:
        return self.api("alerts")["alerts"]

    def wait_streamed(self) -> None:
        """Every event sent, every valid one predicted, and Prometheus has scraped it."""
        if self.streamed:
            return
        assert self.producer is not None
        self.producer.join(timeout=N / RATE + 60)
        assert not self.errors, self.errors
        for role in ("drifting", "stationary"):
            wait_until(lambda role=role: self.value(
                f'sum(streamlearn_predictions_total{{pipeline="{self.names[role]}"}})') == N,
                60, f"Prometheus to see all {N} predictions of the {role} stream")
        wait_until(lambda: self.value(f'sum(streamlearn_examples_learned_total'
                                      f'{{pipeline="{self.names["candidates"]}"}})') == EVENTS,
                   60, f"Prometheus to see all {EVENTS} candidate examples learned")
        self.streamed = True

    def value(self, promql: str) -> float | None:
        result = self.api("query", query=promql)["result"]
        return float(result[0]["value"][1]) if result else None


def _worker_env(kafka: str, tmp: Path, role: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    env.update(
        STREAMLEARN_BOOTSTRAP=kafka,
        STREAMLEARN_STATE_DIR=str(tmp / f"state-{role}"),
        STREAMLEARN_METRICS_PORT=str(free_port()),
        STREAMLEARN_MODEL_KEY=MODEL_KEY,
        STREAMLEARN_SESSION_TIMEOUT=str(SESSION_TIMEOUT_S),
        STREAMLEARN_DRIFT_PSI_EVERY="300",
    )
    return env


def _start_prometheus(tmp: Path, targets: dict[str, str]) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not on PATH: run scripts/system-deps.sh"
    (tmp / "alerts.yml").write_text(json.dumps(compressed_rules()))
    listed = ", ".join(f"'{t}'" for t in targets.values())
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n"
        "  - job_name: streamlearn\n"
        f"    static_configs: [{{targets: [{listed}]}}]\n"
    )
    port = free_port()
    with open(tmp / "prometheus.log", "wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={tmp / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
             f"--web.console.templates={ROOT / 'monitoring' / 'consoles'}",
             f"--web.console.libraries={ROOT / 'monitoring' / 'console_libraries'}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (tmp / "prometheus.log").read_text()
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_until(ready, 30, "Prometheus to be ready")
    return proc, url


def _serving(worker: subprocess.Popen, target: str, log: Path) -> bool:
    assert worker.poll() is None, log.read_text()
    try:
        return bool(fetch(f"http://{target}/metrics"))
    except MetricsUnavailable:
        return False


def _predicted(stack: Stack, role: str) -> float | None:
    """Predictions the worker itself reports (Prometheus may not have scraped it yet)."""
    text = fetch(f"http://{stack.targets[role]}/metrics")
    return parse(text, 0.0).total("streamlearn_predictions_total", stack.names[role])


def _produce(stack: Stack, kafka: str) -> None:
    """The first event of each stream, its prediction, then the rest paced at RATE."""
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    try:
        def send(role: str, i: int) -> None:
            event = stack.streams[role][i]
            producer.send(stack.specs[role].events_topic, key=event["event_id"].encode(),
                          value=orjson.dumps(event))

        for role in ("drifting", "stationary"):
            send(role, 0)
        producer.flush()
        for role in ("drifting", "stationary"):  # both workers own their partition now
            wait_until(lambda role=role: _predicted(stack, role) == 1, 60,
                       f"the {role} worker's first prediction")
        events, labels = stack.streams["candidates"], stack.labels
        begin = time.monotonic()
        for i in range(0, N):
            if i < len(events):  # each label right after its event
                for topic, record in ((stack.specs["candidates"].events_topic, events[i]),
                                      (stack.specs["candidates"].labels_topic, labels[i])):
                    producer.send(topic, key=record["event_id"].encode(),
                                  value=orjson.dumps(record))
            if i == 0:
                continue
            send("drifting", i)
            send("stationary", i)
            if i % BAD_EVERY == 0:
                producer.send(stack.specs["drifting"].events_topic, key=b"bad", value=b"{oops")
            pause = begin + i / RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        producer.flush()
    except BaseException as exc:  # surfaced by wait_streamed
        stack.errors.append(exc)
    finally:
        producer.close()


@pytest.fixture(scope="module")
def stack(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dashboards")
    names = {role: f"t-{role[:4]}-{uuid.uuid4().hex[:8]}" for role in ROLES}
    specs = {role: load_pipeline(PIPELINES.get(role, DRIFTING)).renamed(name)
             for role, name in names.items()}
    for spec in specs.values():
        create_topics(kafka, spec.topics, topic_configs(spec, Settings()))
    workers: list[subprocess.Popen] = []
    targets = {}
    prometheus = None
    try:
        for role in ROLES:
            env = _worker_env(kafka, tmp, role)
            targets[role] = f"127.0.0.1:{env['STREAMLEARN_METRICS_PORT']}"
            with open(tmp / f"worker-{role}.log", "wb") as log:
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "streamlearn", "run",
                     str(PIPELINES.get(role, DRIFTING)), "--name", names[role]],
                    env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))

        for role, worker in zip(ROLES, workers, strict=True):
            wait_until(lambda role=role, worker=worker: _serving(worker, targets[role],
                                                                 tmp / f"worker-{role}.log"),
                       60, f"the {role} worker's /metrics")
        # Started once the workers answer, so that `up` is 1 from its first scrape.
        prometheus, url = _start_prometheus(tmp, targets)
        events, labels = candidates_stream(seed=3, flip_at=FLIP_AT)
        stack = Stack(url, names, targets, specs,
                      {"drifting": drifting_stream(seed=3),
                       "stationary": stationary_stream(seed=3), "candidates": events},
                      started=time.time(), tmp=tmp, labels=labels)
        stack.producer = threading.Thread(target=_produce, args=(stack, kafka), daemon=True)
        stack.producer.start()
        yield stack
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=30)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


def test_stationary_stream_is_one_on_which_adwin_reports_a_change():
    # The stationary stream is not trivially quiet: ADWIN on the error fires once, as
    # the model still converges (the error falls). The concept alert must not take it.
    spec = load_pipeline(DRIFTING)
    concept, data = offline_positions(spec, stationary_stream(seed=3))
    assert concept == {("ADWIN", "drift", 4064)}
    assert data == set()


def test_drift_alerts_fire_on_the_drifting_stream(stack: Stack):
    name = stack.names["drifting"]
    seen: set[tuple[str, str]] = set()

    def both_fired() -> bool:
        for alert in stack.alerts():
            labels = alert["labels"]
            if labels.get("pipeline") == name and alert["state"] == "firing":
                seen.add((labels["alertname"], labels.get("feature", "")))
        return {("StreamlearnConceptDrift", ""), ("StreamlearnDataDrift", "a")} <= seen

    try:
        wait_until(both_fired, N / RATE + 40, f"drift alerts of {name} to fire", every=0.25)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; seen firing: {sorted(seen)}") from None

    stack.wait_streamed()
    # The data-drift alert's stability-index branch holds alone, for `a` only.
    data_rule = next(r for g in compressed_rules()["groups"] for r in g["rules"]
                     if r["alert"] == "StreamlearnDataDrift")
    psi_branch = top_level_branches(data_rule["expr"])[0]
    assert "streamlearn_stability_index" in psi_branch
    held = {(s["metric"]["pipeline"], s["metric"]["feature"]) for s in stack.history(psi_branch)}
    assert held == {(name, "a")}


def test_no_alert_on_the_stationary_stream_nor_the_idle_worker(stack: Stack):
    stack.wait_streamed()
    # Until every rule's windows (and `for`) have moved past the stream's end: a condition
    # can turn true after the last event, as old samples leave a window.
    rules = [r for g in compressed_rules()["groups"] for r in g["rules"]]
    durations = [int(d) for r in rules
                 for d in [*re.findall(r"(?:\[|offset )(\d+)s", r["expr"]), r["for"][:-1]]]
    time.sleep(max(durations) + 2)
    stationary = stack.history(f'ALERTS{{pipeline="{stack.names["stationary"]}"}}')
    drift = [s["metric"] for s in stationary if s["metric"]["alertname"] in DRIFT_ALERTS]
    assert drift == [], drift
    idle = stack.history(f'ALERTS{{pipeline="{stack.names["idle"]}"}} or '
                         f'ALERTS{{instance="{stack.targets["idle"]}"}}')
    assert idle == []
    # The same rules did fire on the drifting stream, in the same Prometheus.
    fired = stack.history(f'ALERTS{{pipeline="{stack.names["drifting"]}", '
                          'alertstate="firing"}')
    assert {"StreamlearnConceptDrift", "StreamlearnDataDrift"} <= {
        s["metric"]["alertname"] for s in fired}
    assert not any(s["metric"].get("feature") == "b" for s in fired)


def test_primary_metric_alert_on_the_degraded_model_only(stack: Stack):
    # Boolean labels: ROC AUC is the primary metric, threshold 0.7 on its rolling value.
    # The drifting stream's label rule flips at event 4,000: the rolling ROC AUC stays
    # below 0.7 for about 1,000 events (4 s here, short of the compressed `for` of 10 s).
    # The stationary model's is below it only over its first ~150 events, before it is
    # ready (too brief to be caught here: promtool's tests cover readiness).
    stack.wait_streamed()
    drifting = stack.names["drifting"]
    assert stack.value(f'streamlearn_metric_threshold{{pipeline="{drifting}", '
                       'metric="rolling_roc_auc"}') == 0.7
    seen = {(s["metric"]["pipeline"], s["metric"]["metric"], s["metric"]["partition"])
            for s in stack.history(f'ALERTS{{alertname="{PAST}"}}')}
    assert (drifting, "rolling_roc_auc", "0") in seen, seen
    assert {p for p, *_ in seen} <= {drifting, stack.names["candidates"]}, seen
    # Both models are ready now, scored on all of their stream.
    for role in ("drifting", "stationary"):
        ready = stack.value(f'streamlearn_model_score_ready{{pipeline="{stack.names[role]}"}}')
        assert ready == 1, role


class _Page(HTMLParser):
    """Headings, graph divs (and whether an <svg> was drawn in each) and query attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.exprs: list[str] = []
        self.graphs: dict[str, list[str]] = {}
        self._heading: list[str] | None = None
        self._graph: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("data-expr"):
            self.exprs.append(str(found["data-expr"]))
        if self._graph is not None:
            self._depth += tag not in {"img", "input", "br", "meta", "link"}
            self.graphs[self._graph].append(tag)
        elif tag == "div" and "sl-graph" in (found.get("class") or "").split():
            self._graph, self._depth = str(found["id"]), 1
            self.graphs[self._graph] = []
        if tag in {"h1", "h2", "h3"}:
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if self._graph is not None:
            self._depth -= 1
            if self._depth == 0:
                self._graph = None
        if tag in {"h1", "h2", "h3"} and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)


def console_url(stack: Stack) -> str:
    query = urllib.parse.urlencode({"pipeline": stack.names["drifting"], "window": "10s"})
    return f"{stack.prometheus}{CONSOLE}?{query}"


def test_every_console_and_grafana_query_returns_data(stack: Stack):
    stack.wait_streamed()
    with urllib.request.urlopen(console_url(stack), timeout=10) as response:
        assert response.status == 200
        page = _Page()
        page.feed(response.read().decode())
    assert len(page.graphs) == len(GRAPH_TITLES)
    board = json.loads((ROOT / "monitoring/grafana/dashboards/streamlearn.json").read_text())
    grafana = [t["expr"].replace("$pipeline", stack.names[
                   "candidates" if any(m in t["expr"] for m in CANDIDATE_PANELS) else "drifting"])
               .replace("$__rate_interval", RATE_WINDOW)
               for panel in board["panels"] for t in panel["targets"]]
    empty = [expr for expr in page.exprs + grafana if not stack.history(expr)]
    assert empty == []
    assert len(page.exprs) > len(GRAPH_TITLES)  # the right-hand table's values too
    # The table shows the alert's threshold and whether the model is ready for it.
    assert any("streamlearn_metric_threshold" in e for e in page.exprs), page.exprs
    assert any("streamlearn_model_score_ready" in e for e in page.exprs), page.exprs
    # Grafana's $pipeline variable lists the pipeline.
    pipelines = stack.api("label/pipeline/values", **{"match[]": "streamlearn_events_total"})
    assert stack.names["drifting"] in pipelines


def _chromium(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    assert binary, "chromium is not on PATH: run scripts/system-deps.sh (apt-get install chromium)"
    duration = math.ceil(time.time() - stack.started) + 5
    time_range = urllib.parse.quote(json.dumps({"duration": duration, "endTime": 0}))
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={stack.tmp / 'chromium'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1400,1700", "--virtual-time-budget=10000", *args,
         f"{console_url(stack)}#pctc{time_range}"],
        capture_output=True, text=True, timeout=60,
    )


def test_console_page_renders_in_chromium(stack: Stack):
    stack.wait_streamed()
    dom = _chromium(stack, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and (
        "Uncaught" in line or "Error" in line)]
    assert errors == []
    page = _Page()
    page.feed(dom.stdout)
    assert f"streamlearn: {stack.names['drifting']}" in page.headings
    assert [h for h in page.headings if h in GRAPH_TITLES] == GRAPH_TITLES
    undrawn = [graph for graph, tags in page.graphs.items() if "svg" not in tags]
    assert undrawn == [], "graphs without a plot (no data, or a script failed)"
    assert "No timeseries returned" not in dom.stdout
    assert "Error loading data" not in dom.stdout

    screenshot = stack.tmp / "dashboard.png"
    shot = _chromium(stack, f"--screenshot={screenshot}")
    assert shot.returncode == 0, shot.stderr[-3000:]
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    if os.environ.get("STREAMLEARN_UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(screenshot, ROOT / "docs" / "dashboard.png")


def test_top_once_prints_the_pipelines_numbers(stack: Stack):
    stack.wait_streamed()
    name = stack.names["drifting"]
    result = subprocess.run(
        [sys.executable, "-m", "streamlearn", "top", str(DRIFTING), "--name", name,
         "--url", f"http://{stack.targets['drifting']}/metrics", "--once", "--interval", "0.5"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    bar = r"\s*[│|]\s*"  # rich's table rule (ASCII where the terminal has no UTF-8)
    events = N + (N - 1) // BAD_EVERY
    assert f"{name} at http://{stack.targets['drifting']}/metrics" in out
    assert re.search(rf"{bar}{events}{bar}0{bar}0{bar}0{bar}", out), out  # idle now: no rates
    scores = stack.api("query", query=f'streamlearn_model_score{{pipeline="{name}"}}')["result"]
    # The pipeline's metrics, prequential and rolling: partition 0's row, the primary first.
    values = {s["metric"]["metric"]: float(s["value"][1]) for s in scores}
    order = ("roc_auc", "rolling_roc_auc", "accuracy", "rolling_accuracy")
    assert len(scores) == 4 and values.keys() == set(order), scores
    heading = r"\s*[┃│|]\s*"  # rich's header rule is heavier
    assert re.search(heading.join(["", "partition", "roc_auc", "rolling roc_auc", "accuracy",
                                   "rolling accuracy", ""]), out), out
    row = bar.join(["", "0", *(f"{values[m]:.4f}" for m in order), ""])
    assert re.search(row, out), (values, out)
    assert re.search(rf"{bar}invalid_json{bar}{(N - 1) // BAD_EVERY}{bar}", out), out
    psi = stack.value(f'max(streamlearn_stability_index{{pipeline="{name}", feature="a"}})')
    assert psi is not None and psi > 0.25
    assert re.search(rf"{bar}data{bar}a{bar}{psi:.4g}{bar}[\d.]+{bar}ADWIN drift x1", out), out
